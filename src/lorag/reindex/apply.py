"""Embed, write, verify, publish: the steps of a re-index that touch the index, in crash-safe order.

Incremental: journal the touched documents in the state, upsert new and changed rows, delete stale rows last,
verify, then save the state (clearing the journal). Full: build a new collection, verify it, then move the alias.
A run killed anywhere leaves the published alias serving at least what it served before.
"""

from __future__ import annotations

import dataclasses
import random
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any


import numpy as np

from lorag.faults import pause_point
from lorag.index.protocol import IndexRow, RowMeta
from lorag.index.state import IndexState
from lorag.progress import NullProgress, Progress

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.embedding.embedder import Embedder
    from lorag.index.protocol import IndexStore
    from lorag.reindex.prepare import Prepared

class VerificationFailed(RuntimeError):
    """The written collection does not match the plan; nothing was published."""


@dataclass
class Embedded:
    vectors: dict[str, np.ndarray]  # text hash -> vector
    computed: int
    reused: int
    seconds: float


def embed_plan(params: Params, prepared: Prepared, embedder: Embedder, progress: Progress | None = None) -> Embedded:
    """Vectors for every row to write: from the content-addressed cache, computing only the misses."""
    from lorag.embedding.cache import EmbeddingCache
    from lorag.embedding.fanout import batch_runner
    from lorag.embedding.pipeline import embed_texts

    started = time.perf_counter()
    texts = {c.text_hash: c.text for c in prepared.plan.upserts}
    cache = EmbeddingCache(params.embedding.cache_path)
    if not texts:  # a no-op run shows no empty "embedding 0/0" bar
        return Embedded({}, 0, 0, time.perf_counter() - started)
    progress = progress or NullProgress()
    with progress.task("embedding", total=len(texts)) as advance:
        runner = batch_runner(params.embedding, params.root, embedder)
        result = embed_texts(embedder, cache, texts, on_progress=advance, runner=runner)
    return Embedded(result.vectors, result.computed, result.reused, time.perf_counter() - started)


def write_plan(
    store: IndexStore,
    prepared: Prepared,
    embedded: Embedded,
    dim: int,
    batch: int = 512,
    progress: Progress | None = None,
) -> float:
    """Apply the plan: upserts first, deletes last. Returns seconds spent."""
    started = time.perf_counter()
    if prepared.mode == "full":
        store.create_collection(prepared.collection, dim)
    elif prepared.previous is not None and (prepared.plan.upserts or prepared.plan.deletes):
        # Journal only a run that writes: with no rows to write there is nothing a crash could leave half-done.
        journal = dataclasses.replace(prepared.previous, pending=list(prepared.touched))
        store.save_state(prepared.alias, journal.to_dict())
    rows = [_row(c, prepared.snapshot.data_rev, embedded.vectors[c.text_hash]) for c in prepared.plan.upserts]
    progress = progress or NullProgress()
    with progress.task("writing", total=len(rows) + len(prepared.plan.deletes)) as advance:
        for n, i in enumerate(range(0, len(rows), batch), 1):
            store.upsert(prepared.collection, rows[i : i + batch])
            advance(len(rows[i : i + batch]))
            pause_point(f"upsert:{n}")
        deletes = list(prepared.plan.deletes)
        for n, i in enumerate(range(0, len(deletes), batch), 1):
            pause_point(f"delete:{n}")
            store.delete(prepared.collection, deletes[i : i + batch])
            advance(len(deletes[i : i + batch]))
    return time.perf_counter() - started


def _row(chunk: Any, data_rev: str, vector: np.ndarray) -> IndexRow:
    meta = RowMeta(
        chunk_id=chunk.chunk_id,
        doc_id=chunk.doc_id,
        text_hash=chunk.text_hash,
        heading=chunk.heading,
        start=chunk.start,
        end=chunk.end,
        ordinal=chunk.ordinal,
        data_rev=data_rev,
    )
    return IndexRow(meta=meta, text=chunk.text, vector=np.asarray(vector, dtype=np.float32))


VERIFY_BATCH = 512  # ids per exact lookup
SMOKE_QUERIES = 5  # random upserted chunks searched for, as a check of the search path (never a reason to refuse)


def verify_plan(store: IndexStore, prepared: Prepared, embedded: Embedded, seed: int | None = None) -> dict[str, Any]:
    """Prove the collection holds exactly what the run wrote, before anyone is pointed at it.

    Exact checks, by id: every upserted chunk is stored with its text hash and vector, every deleted chunk is
    gone, and the row count is the plan's. A ranked search cannot be one of them: identical texts (front matter,
    license footers) tie and an approximate index may miss a row, so a search that does not return one particular
    id proves nothing. A few random searches still exercise the search path; they accept any row with the same
    text and are reported, never fatal.
    """
    upserts, deletes = prepared.plan.upserts, list(prepared.plan.deletes)
    _check_upserts(store, prepared.collection, upserts, embedded)
    for i in range(0, len(deletes), VERIFY_BATCH):
        left = store.fetch_rows(prepared.collection, deletes[i : i + VERIFY_BATCH])
        if left:
            raise VerificationFailed(
                f"check 'deleted rows are gone' failed: {len(left)} chunks the run deleted are still in "
                f"{prepared.collection} (e.g. {next(iter(left))}); nothing was published. Re-run the re-index: "
                "deletes are idempotent."
            )
    count = store.count(prepared.collection)
    if count != prepared.plan.expected_count:
        raise VerificationFailed(
            f"check 'row count' failed: collection {prepared.collection} holds {count} chunks, the plan expects "
            f"{prepared.plan.expected_count}; nothing was published. Re-run the re-index (writes are idempotent); "
            "if it fails again, rebuild with `lorag reindex --full`."
        )
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    smoke = _smoke_search(store, prepared.collection, upserts, embedded, random.Random(seed))
    return {"chunks": count, "rows_checked": len(upserts), "deletes_checked": len(deletes), "sample_seed": seed, **smoke}


def _check_upserts(store: IndexStore, collection: str, upserts: list, embedded: Embedded) -> None:
    for i in range(0, len(upserts), VERIFY_BATCH):
        batch = upserts[i : i + VERIFY_BATCH]
        stored = store.fetch_rows(collection, [c.chunk_id for c in batch])
        for chunk in batch:
            row = stored.get(chunk.chunk_id)
            if row is None:
                problem = "is missing"
            elif row.meta.text_hash != chunk.text_hash or row.meta.doc_id != chunk.doc_id:
                problem = f"holds text {row.meta.text_hash[:12]} of {row.meta.doc_id}, not {chunk.text_hash[:12]}"
            elif not np.allclose(row.vector, embedded.vectors[chunk.text_hash], atol=1e-5):
                problem = "holds a different vector than the one computed for its text"
            else:
                continue
            raise VerificationFailed(
                f"check 'every written row is stored' failed: chunk {chunk.chunk_id} ({chunk.doc_id}) {problem} "
                f"in {collection}; nothing was published. Re-run the re-index: writes are idempotent."
            )


def _smoke_search(store: IndexStore, collection: str, upserts: list, embedded: Embedded, rng: random.Random) -> dict:
    """Search for a few random written chunks; a hit is any row with the same text (duplicates tie)."""
    picked = rng.sample(upserts, min(SMOKE_QUERIES, len(upserts)))
    found = 0
    for chunk in picked:
        hits = store.search(collection, chunk.text, embedded.vectors[chunk.text_hash], top_k=5, alpha=1.0, mode="dense")
        found += any(h.text == chunk.text for h in hits)  # same text, same hash: no second read of the rows
    return {"sample_queries": len(picked), "sample_queries_found": found}


def publish(store: IndexStore, params: Params, prepared: Prepared, run_key: str = "") -> IndexState:
    """Make the run visible: move the alias (full) and save the state, which also clears the journal."""
    pause_point("publish:1")
    history = list(prepared.previous.history) if prepared.previous else []
    if prepared.mode == "full":
        store.set_alias(prepared.alias, prepared.collection)
        history.append(prepared.collection)
    state = IndexState(
        collection=prepared.collection,
        data_rev=prepared.snapshot.data_rev,
        git_rev=prepared.snapshot.git_rev,
        embedder=prepared.embedder,
        chunking=prepared.chunking,
        manifest=prepared.manifest,
        chunk_count=prepared.plan.expected_count,
        history=history[-params.index.keep_last :],
        pending=None,
        updated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        run_key=run_key,
    )
    store.save_state(prepared.alias, state.to_dict())
    if prepared.mode == "full":
        _prune(store, prepared.alias, state)
    return state


def _prune(store: IndexStore, alias: str, state: IndexState) -> list[str]:
    """Drop collections of this alias that fell out of `keep_last`, and orphans of runs killed mid-build.

    Only names this alias's builds produce (`<alias>_<rev>_<fingerprint>_<time>[_<suffix>]`) are candidates: a
    plain prefix match would let alias `docs` prune the collections of alias `docs_v2`.
    """
    from lorag.promotion.index_release import released_collections

    # A collection a release references (its frozen copy, or the one it was frozen from) is never pruned.
    keep = set(state.history) | {state.collection} | released_collections(store, alias)
    built_here = re.compile(rf"^{re.escape(alias.lower())}_[0-9a-f]{{8}}_[0-9a-f]{{8}}_\d{{8}}t\d{{6}}(_[0-9a-f]{{8}})?$")
    dropped = []
    for name in store.list_collections():
        if built_here.match(name.lower()) and name not in keep:
            store.drop_collection(name)
            dropped.append(name)
    return dropped
