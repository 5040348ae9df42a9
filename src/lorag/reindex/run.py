"""One re-index run end to end, for the CLI and tests; the Prefect flow calls the same steps one task each."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lorag.progress import Progress
from lorag.reindex.apply import embed_plan, publish, verify_plan, write_plan
from lorag.reindex.prepare import Prepared, prepare, take_snapshot

if TYPE_CHECKING:
    from lorag.config import Params


class ReindexBusy(RuntimeError):
    """Another re-index holds the lock."""


@contextmanager
def reindex_lock(params: Params) -> Iterator[None]:
    """Only one re-index per project at a time (the Prefect flow adds a server-side concurrency limit on top)."""
    from filelock import FileLock, Timeout

    path = params.path(params.index.lancedb_dir).parent / "reindex.lock"
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


@dataclass
class ReindexResult:
    prepared: Prepared
    dry_run: bool
    embeddings_computed: int = 0
    embeddings_reused: int = 0
    verified: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    quarantine_dir: str | None = None
    run_id: str | None = None

    def summary(self) -> dict[str, Any]:
        out = self.prepared.summary()
        out["embeddings"] = {"computed": self.embeddings_computed, "reused": self.embeddings_reused}
        out.update(dry_run=self.dry_run, verified=self.verified, seconds=self.seconds)
        out["quarantine_dir"] = self.quarantine_dir
        out["mlflow_run_id"] = self.run_id
        return out


def run_reindex(
    params: Params, full: bool = False, dry_run: bool = False, progress: Progress | None = None
) -> ReindexResult:
    """Snapshot -> validate -> plan -> embed -> write -> verify -> publish, under the project lock."""
    from lorag.embedding.embedder import load_embedder
    from lorag.index.stores import open_store
    from lorag.reindex.record import quarantine_failures, record_reindex
    from lorag.validation.documents import require_ok

    with reindex_lock(params):
        started = time.perf_counter()
        snapshot = take_snapshot(params, dry_run=dry_run)
        embedder = load_embedder(params.embedding, root=params.root)
        store = open_store(params)
        try:
            prepared = prepare(params, snapshot, store, embedder, full=full)
            result = ReindexResult(prepared=prepared, dry_run=dry_run)
            result.seconds.update(snapshot=prepared.seconds.get("snapshot", 0.0), prepare=prepared.seconds["prepare"])
            if dry_run:
                result.embeddings_reused, result.embeddings_computed = count_cached(params, prepared)
                return result
            result.quarantine_dir = quarantine_failures(params, prepared)
            require_ok(prepared.report)  # too many bad documents: stop before anything is written
            embedded = embed_plan(params, prepared, embedder, progress)
            result.embeddings_computed, result.embeddings_reused = embedded.computed, embedded.reused
            result.seconds["embed"] = embedded.seconds
            result.seconds["write"] = write_plan(store, prepared, embedded, embedder.dim, params.index.write_batch, progress)
            result.verified = verify_plan(store, prepared, embedded)
            publish(store, params, prepared)
            result.seconds["total"] = time.perf_counter() - started
            result.run_id = record_reindex(params, result)
            return result
        finally:
            store.close()


def count_cached(params: Params, prepared: Prepared) -> tuple[int, int]:
    """(reused, to compute) for a dry run: a cache lookup, no model work."""
    from lorag.embedding.cache import EmbeddingCache

    hashes = {c.text_hash for c in prepared.plan.upserts}
    cache = EmbeddingCache(params.path(params.embedding.cache_path))
    found = cache.get_many(prepared.embedder, sorted(hashes))
    return len(found), len(hashes) - len(found)
