"""`lorag watch`: the documents folder watched (watchfiles), bursts debounced into one change, and that change
either announced to the deployments (event `triggers.docs_changed`, delivery confirmed) or re-indexed here.

Debounce: after the first write, the watcher keeps collecting while writes keep coming less than
`triggers.debounce_ms` apart (an editor's save, a `git pull` of 200 files), for at most MAX_BATCH_MS, then hands
over one batch. Only document files count (corpus.suffixes; deletions of anything, since a deleted folder's
files cannot be told apart), hidden folders (.git, .dvc) never do.

Change-to-searchable latency = from the newest modification time in the batch to the moment search returns the
changed document: measured in-process for every change and logged to MLflow as an SLO metric.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params

MAX_BATCH_MS = 10_000  # a change that never goes quiet (a long copy) is still handled in 10 s slices


@dataclass(frozen=True)
class ChangeBatch:
    paths: tuple[str, ...]  # relative to the docs folder, POSIX
    deleted: tuple[str, ...]
    changed_at: float  # newest mtime among the files that still exist; the batch's arrival for pure deletions
    received_at: float

    def payload(self) -> dict[str, Any]:
        return {"changed_at": str(self.changed_at), "files": len(self.paths) + len(self.deleted),
                "paths": list(self.paths[:20]), "deleted": list(self.deleted[:20])}


@dataclass
class WatchStats:
    batches: int = 0
    latencies: list[float] = field(default_factory=list)


def relevant(params: Params) -> Callable[[Any, str], bool]:
    """watchfiles filter: document files (and any deletion), outside hidden folders."""
    from watchfiles import Change

    root = params.corpus.docs_dir.resolve()
    suffixes = {s.lower() for s in params.corpus.suffixes}

    def keep(change: Change, path: str) -> bool:
        p = Path(path)
        try:
            rel = p.resolve().relative_to(root) if p.exists() else p.relative_to(root)
        except ValueError:
            return False
        if any(part.startswith(".") for part in rel.parts):
            return False
        # A new folder counts: files written into it before the watcher added it are only seen through it.
        return change == Change.deleted or p.suffix.lower() in suffixes or p.is_dir()

    return keep


def to_batch(params: Params, changes: Iterable[tuple[Any, str]]) -> ChangeBatch:
    from watchfiles import Change

    root, now = params.corpus.docs_dir.resolve(), time.time()
    suffixes = {s.lower() for s in params.corpus.suffixes}
    present, gone, mtimes = set(), set(), []
    for change, path in changes:
        p = Path(path)
        if change == Change.deleted and not p.exists():
            gone.add(p.relative_to(root).as_posix())
            continue
        files = [f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes] if p.is_dir() else [p]
        for f in files:
            if f.is_file():
                present.add(f.resolve().relative_to(root).as_posix())
                mtimes.append(f.stat().st_mtime)
    return ChangeBatch(tuple(sorted(present)), tuple(sorted(gone)), max(mtimes) if mtimes else now, now)


def batches(params: Params, stop: threading.Event) -> Iterable[ChangeBatch]:
    """Debounced change batches of the documents folder until `stop` is set."""
    from watchfiles import watch

    for changes in watch(params.corpus.docs_dir, watch_filter=relevant(params), step=params.triggers.debounce_ms,
                         debounce=MAX_BATCH_MS, stop_event=stop, raise_interrupt=False, rust_timeout=500,
                         yield_on_timeout=False):
        if changes:
            yield to_batch(params, changes)


def announce(params: Params, api_url: str) -> Callable[[ChangeBatch], dict[str, Any]]:
    """Handler: deliver `triggers.docs_changed` for the batch (retried; raises EventNotDelivered)."""
    from lorag.events import send_event

    def handle(batch: ChangeBatch) -> dict[str, Any]:
        event_id = send_event(api_url, params.triggers.docs_changed, params.root, batch.payload(),
                              retries=params.triggers.delivery_retries)
        return {"event_id": event_id, **batch.payload()}

    return handle


def _library_reindex(params: Params) -> dict[str, Any]:
    from lorag.reindex.run import ReindexBusy, run_reindex

    while True:
        try:
            return run_reindex(params).summary()
        except ReindexBusy:  # a run started elsewhere may have read the folder before this change: go again
            time.sleep(0.5)


def reindex_here(params: Params, record: bool = True, reindex: Callable[[], dict[str, Any]] | None = None,
                 mode: str = "watch") -> Callable[[ChangeBatch], dict[str, Any]]:
    """Handler: re-index in this (warm) process, then measure change-to-searchable latency and log it to MLflow.

    `reindex` returns the run summary: the library recipe by default; `lorag serve` passes the Prefect flow, so
    each change is a flow run in the UI, under the same concurrency limit as the deployments.
    """
    run = reindex or (lambda: _library_reindex(params))

    def handle(batch: ChangeBatch) -> dict[str, Any]:
        summary = run()
        searchable = confirm_searchable(params, batch)
        latency = searchable - batch.changed_at
        seconds = {k: float(v) for k, v in (summary.get("seconds") or {}).items()}
        if record:
            from lorag.tracking.slo import record_change_latency

            record_change_latency(params, latency, mode, summary.get("data_rev") or "",
                                  len(batch.paths) + len(batch.deleted), seconds)
        return {"change_to_searchable_s": latency, "data_rev": summary.get("data_rev"), "seconds": seconds,
                **batch.payload()}

    return handle


def confirm_searchable(params: Params, batch: ChangeBatch, attempts: int = 20) -> float:
    """The time search first returns a changed document (its first line as the query); for deletions only, the
    time the re-index returned. Searches made here are kept out of the query log."""
    from lorag.retrieval.search import search

    quiet = params.model_copy(update={"monitoring": params.monitoring.model_copy(update={"query_log": False})})
    for rel in batch.paths:
        path = params.corpus.docs_dir / rel
        line = next((ln.strip(" #*-=") for ln in _read(path).splitlines() if len(ln.strip(" #*-=")) > 3), "")
        if not line:
            continue
        for _ in range(attempts):
            if any(h.doc_id == rel for h in search(quiet, line[:200], top_k=10)):
                return time.time()
            time.sleep(0.05)
    return time.time()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def run_watch(params: Params, handle: Callable[[ChangeBatch], dict[str, Any]], stop: threading.Event,
              on_result: Callable[[dict[str, Any]], None] | None = None) -> WatchStats:
    """Watch until `stop` is set, handing each debounced batch to `handle`; returns counts and latencies."""
    stats = WatchStats()
    for batch in batches(params, stop):
        out = handle(batch)
        stats.batches += 1
        if "change_to_searchable_s" in out:
            stats.latencies.append(float(out["change_to_searchable_s"]))
        if on_result is not None:
            on_result(out)
    return stats
