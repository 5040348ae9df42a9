"""Change-to-searchable latency: a one-document edit under `lorag watch --in-process`, from the file's
modification time to the moment search returns the new text, on the sample corpus and on a ~5,000-chunk corpus.

    python bench/change_latency.py                      # both corpora, 10 edits each
    python bench/change_latency.py --edits 20 --copies 0

Each corpus is a fresh lorag project (DVC versioning, validation, verification, publish, MLflow record: all on).
The large one is the sample plus renamed copies (`copyK/...`, bytes differing by trailing newlines, so no copy is
a duplicate and every copy reuses the cached vectors). After the initial build, the watcher runs in a thread
(the same code as `lorag watch --in-process`); each edit appends a sentence with a unique token to one document,
and this script polls a full-text search for the token (query log off) until that document is returned.
Where the time goes: the watcher's quiet period (triggers.debounce_ms), then each re-index step (from the
run's own timings), then the confirmation search. Writes bench/results/change_latency.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from benchlib import machine, percentiles, set_threads, write_result

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--edits", type=int, default=10)
    p.add_argument("--copies", type=int, default=None, help="renamed copies for the large corpus (default: ~5k chunks)")
    p.add_argument("--target-chunks", type=int, default=5000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/lorag-bench/change-latency"))
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args()


def build(root: Path, copies: int, threads: int) -> tuple[Any, dict[str, Any]]:
    from lorag_side import new_project, reindex

    params = new_project(root, threads)
    sample = REPO / "sample" / "docs"
    for k in range(copies + 1):
        for src in sorted(p for p in sample.rglob("*") if p.is_file()):
            dest = params.corpus.docs_dir / (f"copy{k}/" if k else "") / src.relative_to(sample)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(src.read_bytes() + b"\n" * k)
    return params, reindex(params)


def searchable(params: Any, token: str, rel: str, timeout_s: float = 120.0) -> float:
    from lorag.retrieval.search import search

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(h.doc_id == rel for h in search(params, token, top_k=3, mode="fulltext")):
            return time.time()
        time.sleep(0.02)
    raise SystemExit(f"{rel}: the edit was not searchable after {timeout_s} s")


def measure(params: Any, edits: int) -> list[dict[str, Any]]:
    """Edit one document at a time under the watcher; the time until search returns the new text, per edit."""
    from lorag.watch import reindex_here, run_watch

    quiet = params.model_copy(update={"monitoring": params.monitoring.model_copy(update={"query_log": False})})
    handled: list[dict[str, Any]] = []
    reindex = reindex_here(quiet, record=True)

    def handle(batch: Any) -> dict[str, Any]:
        out = {**reindex(batch), "batch_received_at": batch.received_at}
        handled.append(out)
        return out

    stop = threading.Event()
    thread = threading.Thread(target=run_watch, args=(quiet, handle, stop), daemon=True)
    thread.start()
    time.sleep(1.0)
    docs = sorted(p for p in params.corpus.docs_dir.rglob("*.md"))
    rows = []
    for i in range(edits):
        path = docs[(i * 7) % len(docs)]
        rel, token = path.relative_to(params.corpus.docs_dir).as_posix(), f"probe{uuid.uuid4().hex[:10]}"
        before = len(handled)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"\n\nA new paragraph mentions {token} for the latency probe.\n")
        mtime = path.stat().st_mtime
        seen = searchable(quiet, token, rel)
        while len(handled) == before:  # the watcher's own record of this change (its batch, its re-index steps)
            time.sleep(0.05)
        h = handled[-1]
        rows.append({"doc": rel, "seconds": seen - mtime, "debounce": h["batch_received_at"] - mtime,
                     "reindex_steps": {k: round(v, 3) for k, v in h["seconds"].items()},
                     "recorded_s": h["change_to_searchable_s"]})
        print(f"  edit {i}: {rows[-1]['seconds']:.2f} s (debounce {rows[-1]['debounce']:.2f}, "
              f"steps {rows[-1]['reindex_steps']})", flush=True)
        time.sleep(0.5)
    stop.set()
    thread.join(10)
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    steps = rows[0]["reindex_steps"].keys()
    return {"latency": percentiles([r["seconds"] for r in rows]),
            "median_debounce_s": round(statistics.median(r["debounce"] for r in rows), 3),
            "median_steps_s": {k: round(statistics.median(r["reindex_steps"].get(k, 0.0) for r in rows), 3)
                               for k in steps}}


def main() -> int:
    args = parse_args()
    threads = set_threads(args.threads)
    import shutil

    shutil.rmtree(args.workdir, ignore_errors=True)
    results: dict[str, Any] = {}
    small, first = build(args.workdir / "sample", 0, threads)
    per_copy = first["chunks"]["chunks_expected"]
    copies = args.copies if args.copies is not None else max(round(args.target_chunks / per_copy) - 1, 0)
    corpora = {"sample": (small, first)}
    if copies:
        corpora["large"] = build(args.workdir / "large", copies, threads)
    for name, (params, initial) in corpora.items():
        print(f"{name}: {initial['chunks']['chunks_expected']} chunks", flush=True)
        rows = measure(params, args.edits)
        results[name] = {"chunks": initial["chunks"]["chunks_expected"], "documents": initial["documents"],
                         "rows": rows, **summarise(rows)}
        lat = results[name]["latency"]
        print(f"{name}: p50 {lat['p50_ms'] / 1000:.2f} s, p95 {lat['p95_ms'] / 1000:.2f} s "
              f"(goal p95 <= 2 s: {'met' if lat['p95_ms'] <= 2000 else 'not met'})", flush=True)
    write_result("change_latency", {"setup": {"edits": args.edits, "copies": copies, "threads": threads,
                                              "machine": machine()}, **results}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
