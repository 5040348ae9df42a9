"""One re-index run end to end: the recipe, written once. The CLI runs it in-process; the Prefect flow passes a
`run_step` that runs each step as a task (retries, UI), so both always do the same thing in the same order.

scan (hash the documents, write nothing) -> plan (validate, chunk, diff, deletion guard) -> quarantine ->
snapshot (DVC add, push, commit: only once the plan is accepted) -> embed -> write -> verify -> publish,
under the project lock, inside one MLflow run that spans the work.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from lorag.progress import Progress
from lorag.reindex.apply import embed_plan, publish, verify_plan, write_plan
from lorag.reindex.prepare import Prepared, commit_snapshot, prepare, scan_documents
from lorag.reindex.result import ReindexResult

if TYPE_CHECKING:
    from lorag.config import Params

T = TypeVar("T")
# run_step(name, fn, *args) -> fn(*args): how each step is executed (in-process, or as a Prefect task).
StepRunner = Callable[..., Any]


def in_process(name: str, fn: Callable[..., T], *args: Any) -> T:
    """The default StepRunner: just call the step."""
    return fn(*args)


class ReindexBusy(RuntimeError):
    """Another re-index holds the lock."""


def check_inputs(params: Params) -> None:
    """Refuse a run whose inputs are missing before anything (the lock, .lorag/) is created."""
    docs = params.corpus.docs_dir
    if not docs.is_dir():
        raise FileNotFoundError(f"corpus.docs_dir {docs} does not exist: create it or point corpus.docs_dir at your documents")


@contextmanager
def reindex_lock(params: Params) -> Iterator[None]:
    """Only one re-index per project at a time (the Prefect flow adds a server-side concurrency limit on top)."""
    from filelock import FileLock, Timeout

    path = params.index.lancedb_dir.parent / "reindex.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ReindexBusy(f"another re-index is running (lock {path}); wait for it to finish") from None
    try:
        yield
    finally:
        lock.release()


def run_reindex(
    params: Params,
    full: bool = False,
    dry_run: bool = False,
    accept_deletions: bool = False,
    progress: Progress | None = None,
    run_step: StepRunner = in_process,
) -> ReindexResult:
    """Bring the published index up to date with the documents. A dry run plans and reports, writing nothing."""
    from lorag.embedding.embedder import load_embedder
    from lorag.index.stores import open_store

    check_inputs(params)
    with reindex_lock(params), open_store(params) as store:
        if dry_run:
            return _plan_only(params, store, load_embedder(params.embedding, root=params.root), full, run_step)
        opened = time.perf_counter()
        record = _open_record(params, store)
        opened = time.perf_counter() - opened
        try:
            result = _apply(params, store, full, accept_deletions, progress, run_step, record)
        except BaseException as exc:
            record.fail(exc)
            raise
        recorded = time.perf_counter()
        run_step("record", record.finish, result)
        # Measured around the record itself, so these two reach the summary but not the MLflow run.
        result.seconds.update(record_open=opened, record=time.perf_counter() - recorded)
        return result


def _open_record(params: Params, store: Any) -> Any:
    from lorag.tracking.reindex import ReindexRecord

    return ReindexRecord.open(params, uuid.uuid4().hex, store.load_state(params.index.name))


def _plan_only(params: Params, store: Any, embedder: Any, full: bool, run_step: StepRunner) -> ReindexResult:
    scanned = run_step("scan", scan_documents, params, True)
    prepared = run_step("plan", prepare, params, scanned, store, embedder, full)
    result = ReindexResult(prepared=prepared, dry_run=True, seconds=dict(prepared.seconds))
    result.embeddings_reused, result.embeddings_computed = count_cached(params, prepared)
    return result


def _apply(
    params: Params, store: Any, full: bool, accept_deletions: bool, progress: Progress | None,
    run_step: StepRunner, record: Any,
) -> ReindexResult:
    from lorag.embedding.embedder import load_embedder
    from lorag.reindex.record import quarantine_failures
    from lorag.validation.documents import require_ok

    started = time.perf_counter()
    seconds: dict[str, float] = {}
    step = _timed(run_step, seconds)
    embedder = load_embedder(params.embedding, root=params.root)
    scanned = step("scan", scan_documents, params, False)
    prepared = step("plan", prepare, params, scanned, store, embedder, full)
    prepared.check_deletions(accept_deletions)  # a refused plan leaves no data revision behind
    result = ReindexResult(prepared=prepared, dry_run=False, run_id=record.run_id, seconds=seconds)
    result.quarantine_dir = step("quarantine", quarantine_failures, params, prepared)
    require_ok(prepared.report)  # too many bad documents: stop before anything is versioned or written
    prepared = result.prepared = step("snapshot", commit_snapshot, params, prepared)
    embedded = step("embed", embed_plan, params, prepared, embedder, progress)
    result.embeddings_computed, result.embeddings_reused = embedded.computed, embedded.reused
    step("write", write_plan, store, prepared, embedded, embedder.dim, params.index.write_batch, progress)
    result.verified = step("verify", verify_plan, store, prepared, embedded)
    step("publish", publish, store, params, prepared, record.run_key)
    seconds["total"] = time.perf_counter() - started
    return result


def _timed(run_step: StepRunner, seconds: dict[str, float]) -> StepRunner:
    """`run_step` that also records each step's wall time (as the caller sees it, task overhead included)
    under its name ("plan" as "prepare"): the per-step breakdown the MLflow run and the benchmarks report."""

    def step(name: str, fn: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        try:
            return run_step(name, fn, *args)
        finally:
            key = "prepare" if name == "plan" else name
            seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - started

    return step


def count_cached(params: Params, prepared: Prepared) -> tuple[int, int]:
    """(reused, to compute) for a dry run: a cache lookup, no model work."""
    from lorag.embedding.cache import EmbeddingCache

    hashes = {c.text_hash for c in prepared.plan.upserts}
    cache = EmbeddingCache(params.embedding.cache_path)
    found = cache.get_many(prepared.embedder, sorted(hashes))
    return len(found), len(hashes) - len(found)
