"""Snapshots of data folders (docs, training examples) with DVC: add, push, and (optionally) commit with git.

This is the one module that touches DVC internals (`dvc.repo.Repo` is not a public API): keep it that way so a
DVC upgrade is one file to check. Git is driven with plain subprocess calls.

Symlinks (measured with DVC 3.67.1): `dvc add` on a folder FOLLOWS a symlinked file and copies its target into the
cache (and from there to the remote); it does not enter symlinked directories; a broken symlink makes the whole
`add` fail. By default `add` then "relinks" the workspace from the cache, which replaced a user's in-root link by
a regular copy of its target: lorag adds with `relink=False`, so the documents folder is only ever read (the
cache and remote still hold the link's content, under the link's path in the manifest). lorag therefore lists every symlink under
the docs folder that leads outside it (or nowhere) in a managed block of the root `.dvcignore` before adding.
Ignoring loses nothing: the link stays in the user's folder untouched, the corpus reader reports it as
`symlink_escapes_root` / `broken_symlink`, and validation puts it in the run report. Refusing the whole snapshot
instead would block every re-index on one stray link, and following it would leak an outside file into the
remote.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lorag.config import Params

_IGNORE_BEGIN = "# >>> lorag: symlinks leading outside the docs folder (managed block, rewritten on each snapshot)"
_IGNORE_END = "# <<< lorag"
_FALLBACK_IDENTITY = ("-c", "user.name=lorag", "-c", "user.email=lorag@localhost")


class SnapshotError(RuntimeError):
    """The docs folder could not be versioned. The message says what to change."""


@dataclass
class Snapshot:
    """One DVC version of the docs folder."""

    data_rev: str  # md5 of DVC's `.dir` object for the folder, without the ".dir" suffix
    git_rev: str | None  # commit whose tree holds this .dvc file; None when not committed or not a git repo
    manifest: dict[str, str] = field(default_factory=dict)  # POSIX path relative to the docs folder -> md5
    pushed: bool = False


def snapshot_docs(params: Params) -> Snapshot:
    """Version `corpus.docs_dir` with DVC in the project root: init, set the remote, add, push, commit.

    Re-running without changes is cheap and gives the same `data_rev` and no new commit.
    """
    return _snapshot(params, params.corpus.docs_dir, "corpus.docs_dir", symlink_block=True)


def snapshot_folder(params: Params, folder: Path | str) -> Snapshot:
    """Version any data folder inside the project (e.g. `examples.dir`) like the docs: add, push, commit.

    A folder that is an output of a dvc.yaml stage is committed into dvc.lock instead of getting a .dvc file
    (DVC refuses to track one path twice), so `dvc repro` and this snapshot share one record of it. The
    managed .dvcignore block for escaping symlinks belongs to the docs folder and is left alone here.
    """
    return _snapshot(params, params.path(folder), "its key in params.yaml", symlink_block=False)


def unchanged_snapshot(params: Params, scanned: Snapshot) -> Snapshot | None:
    """The docs snapshot already on record for the scanned revision, or None when `snapshot_docs` has work to do.

    A re-index with nothing changed would otherwise re-add the whole folder (a stat and a state lookup per file,
    the cost that grows with the corpus). Nothing is left to do when this machine's last push was of this very
    revision to the configured remote (a marker written only after the push succeeded), the .dvc file (or
    dvc.lock) records it, and, with versioning.git_commit, HEAD holds that file unchanged.
    """
    root, folder = params.root.resolve(), params.corpus.docs_dir
    try:
        pushed = json.loads(_pushed_marker(root, folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if pushed != _pushed_facts(params, scanned.data_rev) or recorded_revision(params, folder) != scanned.data_rev:
        return None
    dvc_file = folder.with_name(folder.name + ".dvc")
    dvc_file = dvc_file if dvc_file.is_file() else root / "dvc.lock"
    git_rev = _committed_rev(root, dvc_file) if _git_toplevel(root) is not None else None
    if git_rev is None and params.versioning.git_commit and _git_toplevel(root) is not None:
        return None  # pushed but not committed yet (a run died in between): the full path commits it
    return Snapshot(data_rev=scanned.data_rev, git_rev=git_rev, manifest=dict(scanned.manifest), pushed=True)


def _pushed_marker(root: Path, folder: Path) -> Path:
    """Where the last successful push of `folder` is noted: DVC's own git-ignored tmp folder, one file per folder."""
    key = hashlib.sha256(folder.relative_to(root).as_posix().encode()).hexdigest()[:16]
    return root / ".dvc" / "tmp" / f"lorag-pushed-{key}.json"


def _pushed_facts(params: Params, data_rev: str) -> dict[str, str]:
    return {"data_rev": data_rev, "remote": f"{params.versioning.remote_name}={params.versioning.remote_url}"}


def recorded_revision(params: Params, folder: Path | str) -> str | None:
    """The data revision DVC last recorded for `folder` (its `.dvc` file, else dvc.lock), or None.

    Reads the YAML files only: safe inside a running `dvc repro` (which holds the repo lock).
    """
    import yaml

    target = params.path(folder)
    if params.root.resolve() not in target.parents:
        return None  # DVC tracks only paths inside the project
    rel = target.relative_to(params.root.resolve()).as_posix()
    dvc_file = target.with_name(target.name + ".dvc")
    if dvc_file.is_file():
        outs = (yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}).get("outs") or []
        md5 = outs[0].get("md5") if outs else None
        return md5.removesuffix(".dir") if md5 else None
    lock = params.root / "dvc.lock"
    stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {}) if lock.is_file() else {}
    for stage in stages.values():
        for out in stage.get("outs") or []:
            if PurePosixPath(out.get("path", "")).as_posix().rstrip("/") == rel and out.get("md5"):
                return str(out["md5"]).removesuffix(".dir")
    return None


def _snapshot(params: Params, folder: Path, key: str, symlink_block: bool) -> Snapshot:
    root = params.root.resolve()
    if not folder.is_dir():
        raise SnapshotError(f"folder {folder} does not exist: create it or set {key} in params.yaml")
    if root not in folder.parents:
        raise SnapshotError(
            f"folder {folder} is outside the project root {root}: DVC tracks only files inside it; "
            f"move the folder or point {key} inside the project"
        )
    git_top = _git_toplevel(root)
    _ensure_dvc(root, git_top)
    if symlink_block:
        _write_symlink_ignores(root, folder)

    oid, manifest, dvc_file = _add_and_push(root, folder, params)
    marker = _pushed_marker(root, folder)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(_pushed_facts(params, oid.removesuffix(".dir"))), encoding="utf-8")

    git_rev = None
    if git_top is not None:
        paths = _dvc_owned_paths(root, dvc_file, folder)
        if params.versioning.git_commit:
            _git_commit(root, paths, f"lorag: snapshot {folder.relative_to(root).as_posix()} ({oid[:12]})")
        git_rev = _committed_rev(root, dvc_file)
    return Snapshot(data_rev=oid.removesuffix(".dir"), git_rev=git_rev, manifest=manifest, pushed=True)


def _add_and_push(root: Path, docs: Path, params: Params) -> tuple[str, dict[str, str], Path]:
    """`dvc add` the folder and push it; returns the `.dir` oid, its manifest and the .dvc file path."""
    from dvc.dvcfile import FileIsGitIgnored
    from dvc.output import OutputAlreadyTrackedError
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    # Opened after .dvcignore is written: the Repo reads the ignore rules once.
    with Repo(str(root)) as repo:
        repo.scm_context.quiet = True  # DVC's "To track the changes with git, run: git add" is wrong here: we commit
        _ensure_remote(repo, params)
        pipeline_out = _pipeline_output(repo, docs)
        if pipeline_out is not None:
            out = _commit_pipeline_output(repo, pipeline_out)
            dvc_file = root / "dvc.lock"
        else:
            try:
                # relink=False: save to the cache without rewriting the workspace from it (see the module note).
                stage = repo.add(str(docs), relink=False)[0]
            except FileIsGitIgnored as exc:
                raise SnapshotError(
                    f"{exc}. Git ignores the .dvc file next to {docs.name}: ignore only the folder's contents "
                    f"(e.g. '/{docs.relative_to(root).as_posix()}/' instead of its parent) so the .dvc file can "
                    "be committed."
                ) from exc
            except OutputAlreadyTrackedError as exc:
                rel = docs.relative_to(root).as_posix()
                raise SnapshotError(
                    f"{rel} is tracked by git, so DVC cannot version it. Either let DVC track it "
                    f"(`git rm -r --cached {rel} && git commit -m 'track {rel} with DVC'`; the files stay on disk), "
                    "or keep it in git and turn DVC snapshots off: --set versioning.enabled=false."
                ) from exc
            out, dvc_file = stage.outs[0], Path(stage.path)
        oid = out.hash_info.value  # "<md5>.dir"
        manifest = _read_dir_manifest(Path(repo.cache.local.oid_to_path(oid)))
        # Push before committing: a commit must never name data that only exists in this machine's cache.
        try:
            _push_snapshot(repo, oid, params.versioning.remote_name)
        except (DvcException, OSError) as exc:  # a local remote fails with plain OSErrors (measured)
            raise SnapshotError(
                f"push to DVC remote '{params.versioning.remote_name}' failed: {exc}. The snapshot is safe in the "
                "local cache (.dvc/cache); fix versioning.remote_url (or its credentials) and run again."
            ) from exc
    return oid, manifest, dvc_file


def _push_snapshot(repo: object, oid: str, remote: str) -> None:
    """Push this snapshot's objects: the `.dir` object and those of its files the remote lacks.

    Not `repo.push()`: that collects every output of the repository into DVC's data index first, a cost that
    grows with the corpus (0.44 s of a 0.55 s snapshot at 185 files, measured) although an update adds a few
    objects. `shallow=False` makes the transfer list the directory's entries and check each on the remote, so
    an earlier push that died half-way is completed here; the remote's index (as DVC keeps it) lets a remote
    that already holds this `.dir` skip the check.
    """
    from dvc_data.hashfile.db import get_index
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.transfer import transfer

    cache = repo.cache.local  # type: ignore[attr-defined]
    odb = repo.cloud.get_remote_odb(remote, "push")  # type: ignore[attr-defined]
    index = get_index(odb)
    try:
        result = transfer(cache, odb, [HashInfo(cache.hash_name, oid)], shallow=False, dest_index=index,
                          cache_odb=cache)
    finally:
        if index is not None:
            index.close()
    if result.failed:
        raise OSError(f"{len(result.failed)} objects did not reach the remote (e.g. {next(iter(result.failed)).value})")


def _commit_pipeline_output(repo: object, out: object) -> object:
    """`dvc commit --force` of the stage that writes `out`, without a run-cache entry; returns the output.

    Not `repo.commit`: it also saves the stage to the run-cache, which resolves "dvc.yaml" against the CWD and
    fails unless the process runs in the project root (measured, DVC 3.67). A snapshot is not a stage run, so
    the run-cache has no business recording it anyway.
    """
    stage = out.stage  # type: ignore[attr-defined]
    with repo.lock:  # type: ignore[attr-defined]
        stage.save(run_cache=False)
        stage.commit()
        stage.dvcfile.dump_stages([stage], update_pipeline=False)
    return out


def _pipeline_output(repo: object, folder: Path) -> object | None:
    """The output of a dvc.yaml stage that is exactly `folder`, or None (plain data, or not tracked yet)."""
    from dvc.exceptions import OutputNotFoundError

    try:
        outs = repo.find_outs_by_path(str(folder))  # type: ignore[attr-defined]
    except OutputNotFoundError:
        return None
    return next((o for o in outs if not o.stage.is_data_source), None)


def hash_manifest(docs_dir: Path, suffixes: Iterable[str]) -> dict[str, str]:
    """md5 per document file, keyed like DVC's manifest, without writing anything (versioning off, dry runs).

    Skips hidden files and folders, files whose suffix is not in `suffixes`, and symlinks that lead outside
    `docs_dir` or nowhere. Like DVC, it reads through symlinked files but does not enter symlinked folders.
    """
    root = Path(docs_dir).resolve(strict=True)
    wanted = {s.lower() for s in suffixes}
    manifest: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = Path(dirpath, name)
            if name.startswith(".") or path.suffix.lower() not in wanted or not _stays_inside(path, root):
                continue
            if path.is_file():
                manifest[path.relative_to(root).as_posix()] = md5_file(path)
    return dict(sorted(manifest.items()))


def md5_file(path: Path) -> str:
    """The md5 DVC records for a file (its manifest value), computed in 1 MiB blocks."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stays_inside(path: Path, root: Path) -> bool:
    """True unless `path` is a symlink whose target is missing or outside `root` (root already resolved)."""
    if not path.is_symlink():
        return True
    target = path.resolve(strict=False)
    return root in target.parents and target.exists()


def _escaping_symlinks(docs: Path) -> list[Path]:
    """Symlinks (to files or folders) under `docs` that lead outside it or nowhere; folders are not followed."""
    root = docs.resolve()
    found = []
    stack = [str(docs)]
    while stack:  # scandir: the entry type comes with the listing, so only symlinks cost another syscall
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_symlink():
                    if not _stays_inside(Path(entry.path), root):
                        found.append(Path(entry.path))
                elif entry.is_dir():
                    stack.append(entry.path)
    return sorted(found)


def _ignore_pattern(rel: PurePosixPath) -> str:
    """An anchored gitignore-style pattern matching exactly this path (wildcards and leading '#'/'!' escaped)."""
    escaped = re.sub(r"([\\*?\[\]!#])", r"\\\1", rel.as_posix())
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return "/" + escaped


def _write_symlink_ignores(root: Path, docs: Path) -> None:
    """Rewrite lorag's block in `<root>/.dvcignore`; the user's own lines are kept as they are."""
    ignore_file = root / ".dvcignore"
    text = ignore_file.read_text(encoding="utf-8") if ignore_file.exists() else ""
    links = _escaping_symlinks(docs)
    if not links and _IGNORE_BEGIN not in text:
        return  # nothing to add or remove: leave the user's file byte for byte as it is
    kept = re.sub(rf"\n?{re.escape(_IGNORE_BEGIN)}\n.*?{re.escape(_IGNORE_END)}\n?", "\n", text, flags=re.S)
    kept = kept.rstrip("\n")
    block = ""
    if links:
        patterns = [_ignore_pattern(PurePosixPath(p.relative_to(root).as_posix())) for p in links]
        block = "\n".join([_IGNORE_BEGIN, *patterns, _IGNORE_END])
    new = "\n".join(part for part in (kept, block) if part) + "\n"
    if new != text:
        ignore_file.write_text(new, encoding="utf-8")


def revision_manifest(params: Params, data_rev: str) -> dict[str, str] | None:
    """The manifest (relative path -> md5) of a folder snapshot by its data revision, from the local DVC cache;
    None when this machine's cache does not hold it (`dvc pull` fetches it). Read-only: for drift monitoring."""
    from dvc.repo import Repo

    if not (params.root / ".dvc").is_dir():
        return None
    with Repo(str(params.root)) as repo:
        path = Path(repo.cache.local.oid_to_path(f"{data_rev}.dir"))
    return _read_dir_manifest(path) if path.is_file() else None


def _read_dir_manifest(dir_object: Path) -> dict[str, str]:
    """DVC's `.dir` object is a JSON list of {"md5", "relpath"}; relpaths are already POSIX."""
    try:
        entries = json.loads(dir_object.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"cannot read DVC's directory object {dir_object}: {exc}. Run `dvc status`.") from exc
    return dict(sorted((e["relpath"], e["md5"]) for e in entries))


def _ensure_dvc(root: Path, git_top: Path | None) -> None:
    if (root / ".dvc").is_dir():
        return
    from dvc.repo import Repo

    # --subdir when the project root sits inside a bigger git repo; --no-scm when there is no git at all.
    Repo.init(str(root), no_scm=git_top is None, subdir=git_top is not None and git_top != root)


def _ensure_remote(repo: object, params: Params) -> None:
    """Make `versioning.remote_name` the default remote, in `.dvc/config` (committed), not `config.local`.

    DVC reads the remote configuration at the git revision it is asked for: a fresh clone (CI, a colleague, a
    rollback on another machine) only sees `.dvc/config` from that commit, never a `config.local`. The remote
    is a project fact like params.yaml, so it belongs in the committed file. Credentials do not: users put
    those in `.dvc/config.local` (DVC merges it over this file).
    """
    from dvc.config_schema import RelPath

    name, url = params.versioning.remote_name, params.versioning.remote_url
    # A local path is stored relative to .dvc/ (RelPath) so the committed config works in any clone location.
    value = url if re.match(r"\w+://", url) else RelPath(str(params.path(url)))
    current = repo.config.load_one("repo")  # type: ignore[attr-defined]
    if current.get("remote", {}).get(name, {}).get("url") == value and current.get("core", {}).get("remote") == name:
        return
    with repo.config.edit("repo") as conf:  # type: ignore[attr-defined]
        conf["remote"].setdefault(name, {})["url"] = value
        conf["core"]["remote"] = name


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise SnapshotError(f"`git {' '.join(args)}` failed in {root}: {proc.stderr.strip()}")
    return proc


def _git_toplevel(root: Path) -> Path | None:
    proc = _git(root, "rev-parse", "--show-toplevel", check=False)
    return Path(proc.stdout.strip()).resolve() if proc.returncode == 0 else None


def _dvc_owned_paths(root: Path, dvc_file: Path, folder: Path) -> list[str]:
    """The files DVC wrote for this snapshot: the .dvc file (or dvc.lock), the .gitignore next to the folder,
    DVC's own config.

    `.dvc/config` goes along because the remote must be committed with the data that needs it; `.dvcignore`
    because it decides which files the snapshot holds.
    """
    candidates = [dvc_file, folder.parent / ".gitignore", root / ".dvc/config", root / ".dvc/.gitignore"]
    candidates.append(root / ".dvcignore")
    return [p.relative_to(root).as_posix() for p in candidates if p.exists()]


def _git_commit(root: Path, paths: list[str], message: str) -> None:
    """Commit exactly `paths` (a pathspec commit): the user's other staged changes stay staged, uncommitted."""
    _git(root, "add", "--", *paths)
    if _git(root, "diff", "--cached", "--quiet", "--", *paths, check=False).returncode == 0:
        return  # nothing changed since the last snapshot: no empty commit
    identity: tuple[str, ...] = ()
    if _git(root, "var", "GIT_COMMITTER_IDENT", check=False).returncode != 0:
        identity = _FALLBACK_IDENTITY  # only when git has no identity at all; never override the user's
    _git(root, *identity, "commit", "--quiet", "--only", "-m", message, "--", *paths)


def _committed_rev(root: Path, dvc_file: Path) -> str | None:
    """HEAD when it holds this exact .dvc file (committed and unchanged since), else None."""
    rel = dvc_file.relative_to(root).as_posix()
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD", check=False)
    if head.returncode != 0:
        return None
    tracked = _git(root, "ls-files", "--error-unmatch", "--", rel, check=False).returncode == 0
    unchanged = _git(root, "diff", "--quiet", "HEAD", "--", rel, check=False).returncode == 0
    return head.stdout.strip() if tracked and unchanged else None


def scan_docs(params: Params, write_ignores: bool = False) -> Snapshot:
    """The revision and manifest DVC would record for `corpus.docs_dir`, computed without writing anything.

    A re-index plans (and its deletion guard decides) on this; the snapshot is committed only once the plan is
    accepted, so a refused run leaves no data revision behind, and a dry run prints the revision the real run
    will record. Same hashing code as `dvc add` (dvc-data's build, in dry-run mode) and the same ignore rules.
    """
    folder = params.corpus.docs_dir
    if not folder.is_dir():
        raise SnapshotError(f"folder {folder} does not exist: create it or set corpus.docs_dir in params.yaml")
    if write_ignores:  # real runs: the same managed block the snapshot writes, so both see the same files
        _write_symlink_ignores(params.root, folder)
    if (params.root / ".dvc").is_dir():
        from dvc.repo import Repo

        # DVC's own state (path, inode, mtime, size -> md5), which `dvc add` keeps: a file the last snapshot
        # hashed is not read again, so a scan costs a stat per file instead of reading the whole corpus.
        with Repo(str(params.root)) as repo:
            return _scan(folder, repo.fs, repo.state, repo.dvcignore)
    from dvc.fs import LocalFileSystem
    from dvc.ignore import DvcIgnoreFilter

    fs = LocalFileSystem()
    return _scan(folder, fs, None, DvcIgnoreFilter(fs, str(params.root)))


def _scan(folder: Path, fs: object, state: object | None, ignore: object) -> Snapshot:
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs import MemoryFileSystem

    config = {"state": state} if state is not None else {}
    staging = HashFileDB(MemoryFileSystem(), "/lorag-scan", **config)  # dry_run: no object is stored
    try:
        _, _, obj = build(staging, str(folder), fs, "md5", dry_run=True, ignore=ignore)
    except OSError as exc:  # e.g. a broken symlink the managed .dvcignore block does not list yet
        raise SnapshotError(f"cannot hash {folder}: {exc}. Fix or remove the file named above.") from exc
    manifest = {"/".join(key): info.value for key, _, info in obj}  # type: ignore[union-attr]
    return Snapshot(data_rev=obj.hash_info.value.removesuffix(".dir"), git_rev=None, manifest=dict(sorted(manifest.items())))
