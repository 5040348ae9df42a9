"""Hybrid retrieval over the published index, with citations."""

from __future__ import annotations

import threading
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.embedding.base import Embedder
    from lorag.index.protocol import IndexStore, SearchHit, SearchMode


class NoPublishedIndex(RuntimeError):
    """Nothing has been published under the configured alias yet."""


def search(
    params: Params,
    query: str,
    top_k: int | None = None,
    alpha: float | None = None,
    mode: SearchMode = "hybrid",
) -> list[SearchHit]:
    """Embed the query (the index's embedder, or search.query_embedder) and search the collection the alias
    points to."""
    if not query.strip():
        raise ValueError("the query is empty: pass the question to search for, e.g. lorag search \"how do I ...\"")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    store = _open_store(params)
    fingerprint, query_embedder = _embedders(params)
    collection = _checked_collection(params, store, fingerprint)
    hits = store.search(
        collection,
        query,
        # A function, not the vector: a full-text search never embeds the query, and a hybrid search embeds it
        # while the full-text half runs.
        lambda: query_embedder.embed([query])[0],
        top_k=params.search.top_k if top_k is None else top_k,
        alpha=params.search.alpha if alpha is None else alpha,
        mode=mode,
    )
    if params.monitoring.query_log:  # drift monitoring reads it (lorag.drift); off: --set monitoring.query_log=false
        from lorag.drift.querylog import append

        append(params, query, mode, hits, collection)
    return hits


# Searches keep their store open for the life of the process: opening one (and warming its indexes) cost
# ~300 ms per query at 100k chunks (bench/query_latency.py). LanceDB handles read the newest table version on
# every query, so a re-index in another process is seen at once.
_STORES: dict[tuple[str, ...], IndexStore] = {}
# collection -> fingerprint of the embedder it was built with. A collection never changes embedder (a new model
# always means a new collection), so this is checked once per collection, not per query.
_BUILT_WITH: dict[str, str] = {}
_LOCK = threading.Lock()


def _open_store(params: Params) -> IndexStore:
    from lorag.index.stores import open_store

    key = (params.index.backend, str(params.index.lancedb_dir), params.index.weaviate.model_dump_json())
    with _LOCK:
        if key not in _STORES:
            _STORES[key] = open_store(params)
        return _STORES[key]


def _checked_collection(params: Params, store: IndexStore, fingerprint: str) -> str:
    alias = params.index.name
    collection = store.get_alias(alias)
    if collection is None:
        raise NoPublishedIndex(f"no index is published as '{alias}' yet: run `lorag reindex` first")
    if collection not in _BUILT_WITH:
        state = store.load_state(alias)
        if state is None:
            raise NoPublishedIndex(f"no index is published as '{alias}' yet: run `lorag reindex` first")
        _BUILT_WITH[collection] = state["embedder"]
    if _BUILT_WITH[collection] != fingerprint:
        raise NoPublishedIndex(
            f"index '{alias}' was built with another embedding model than embedding.model="
            f"{params.embedding.model!r}: run `lorag reindex` (it rebuilds) or restore the model setting"
        )
    return collection


def _embedders(params: Params) -> tuple[str, Embedder]:
    """(fingerprint of the index's embedder, what embeds the query). The query embedder is the index's own, or
    with search.query_embedder: onnx-int8 the int8 ONNX export of the same model, within cosine 0.996 of it at a
    third of the latency (BENCHMARKS.md); then the index's fingerprint is read from the model files, so a cold
    search never imports torch. An index of another model is refused either way."""
    from lorag.embedding.embedder import embedder_fingerprint, load_embedder

    wanted = params.search.query_embedder
    if wanted == "index" or wanted == params.embedding.backend:
        embedder = load_embedder(params.embedding, root=params.root)
        return embedder.fingerprint, embedder
    query = load_embedder(params.embedding.model_copy(update={"backend": wanted}), root=params.root)
    return embedder_fingerprint(params.embedding, root=params.root), query


def citation(hit: SearchHit) -> str:
    """How a passage is cited everywhere (`path > heading`): the one formatter in lorag.answer.format."""
    from lorag.answer.format import citation as cite

    return cite(hit)


def hits_as_json(hits: list[SearchHit]) -> list[dict[str, Any]]:
    return [{**asdict(h), "citation": citation(h)} for h in hits]
