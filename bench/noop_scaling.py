"""No-op re-index cost at 1x and 10x the corpus, in one run: does a re-index with nothing to do grow with the
corpus or with the change?

    python bench/noop_scaling.py --docs sample/docs                      # the shipped sample corpus
    python bench/noop_scaling.py --bundle ../shared/data/sqlalchemy-docs-history.bundle --folder docs \
        --exclude 'changelog/changelog_0*' 'changelog/changelog_1*' 'changelog/migration_0*' 'changelog/migration_1*'

Two lorag projects (DVC versioning, validation, verify, publish and the MLflow record all on): one holds the
corpus, the other the corpus plus 9 copies of every document under new names (`copy1/...`). Each copy gets k
extra trailing newlines, so its bytes (and md5) differ, which keeps lorag's duplicate-content rule from
quarantining it, while its chunk texts are the original's: the copies reuse the cached vectors and the 10x build
embeds nothing new. After the initial builds, each project is re-indexed `--repeats` times with nothing changed
(order alternating); the medians are compared (target: 10x <= 2x the 1x time). A profile of the 10x no-op run
is printed with `--profile`. Writes bench/results/noop_scaling.json.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import machine, set_threads, write_result

COPIES = 9


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=Path, default=None, help="a documents folder (default: sample/docs)")
    p.add_argument("--bundle", type=Path, default=None, help="or: a git repository/bundle; its newest --folder")
    p.add_argument("--folder", default="docs")
    p.add_argument("--exclude", nargs="*", default=[], help="glob patterns left out (with --bundle)")
    p.add_argument("--memo", type=Path, default=Path("/tmp/lorag-bench/memo.sqlite"),
                   help="embedding cache to seed both projects from (content-addressed; missing texts are embedded)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--profile", action="store_true", help="print a pyinstrument profile of one 10x no-op run")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/lorag-bench/noop"))
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args()


def source_files(args: argparse.Namespace) -> dict[str, bytes]:
    if args.bundle is None:
        root = args.docs or Path(__file__).resolve().parents[1] / "sample" / "docs"
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    from reindex_replay import clone, folder_at

    repo, commits = clone(args.bundle, args.workdir / "history", args.folder, 1)
    return folder_at(repo, commits[0], args.folder, args.exclude)


def with_copies(files: dict[str, bytes], copies: int) -> dict[str, bytes]:
    """The corpus plus `copies` renamed copies whose bytes differ only by trailing newlines."""
    out = dict(files)
    for k in range(1, copies + 1):
        out.update({f"copy{k}/{rel}": data + b"\n" * k for rel, data in files.items()})
    return out


def project(root: Path, files: dict[str, bytes], threads: int, memo: Path) -> Any:
    from lorag_side import new_project

    params = new_project(root, threads)
    for rel, data in files.items():
        path = params.corpus.docs_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if memo.is_file():
        cache = params.embedding.cache_path
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(memo, cache)
    return params


def main() -> int:
    args = parse_args()
    threads = set_threads(args.threads)
    from lorag_side import reindex

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    files = source_files(args)
    sides = {"1x": project(args.workdir / "x1", files, threads, args.memo),
             "10x": project(args.workdir / "x10", with_copies(files, COPIES), threads, args.memo)}
    initial = {}
    for name, params in sides.items():
        initial[name] = reindex(params)
        print(f"initial {name}: {initial[name]['chunks']['chunks_expected']} chunks, "
              f"{initial[name]['texts_embedded']} embedded, {initial[name]['seconds']:.1f} s", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    for i in range(args.repeats):
        for name in (list(sides) if i % 2 == 0 else list(reversed(sides))):
            row = reindex(sides[name])
            if row["chunks"]["chunks_upserted"] or row["chunks"]["chunks_deleted"]:
                raise SystemExit(f"{name}: a no-op run wrote rows: {row['chunks']}")
            runs[name].append(row)
            print(f"  no-op {name}: {row['seconds']:.3f} s {row['seconds_breakdown']}", flush=True)
    if args.profile:
        from pyinstrument import Profiler

        with Profiler(interval=0.002) as prof:
            reindex(sides["10x"])
        print(prof.output_text(unicode=False, color=False), flush=True)
    median = {name: statistics.median(r["seconds"] for r in rows) for name, rows in runs.items()}
    parts = {name: {k: round(statistics.median(r["seconds_breakdown"][k] for r in rows), 3)
                    for k in rows[0]["seconds_breakdown"]} for name, rows in runs.items()}
    ratio = median["10x"] / median["1x"]
    print(f"no-op median: 1x {median['1x']:.3f} s, 10x {median['10x']:.3f} s, ratio {ratio:.2f} "
          f"(target <= 2.0: {'met' if ratio <= 2 else 'not met'})", flush=True)
    write_result("noop_scaling", {
        "setup": {"source": str(args.bundle or args.docs or "sample/docs"), "exclude": args.exclude,
                  "documents_1x": len(files), "copies": COPIES, "repeats": args.repeats, "threads": threads,
                  "machine": machine()},
        "initial": initial, "runs": runs,
        "median_seconds": {k: round(v, 3) for k, v in median.items()}, "median_breakdown": parts,
        "ratio_10x_to_1x": round(ratio, 3), "target_met": ratio <= 2.0,
    }, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
