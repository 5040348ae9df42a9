"""Hybrid retrieval over the published index, with citations."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.index.protocol import SearchHit, SearchMode


class NoPublishedIndex(RuntimeError):
    """Nothing has been published under the configured alias yet."""


def search(
    params: Params,
    query: str,
    top_k: int | None = None,
    alpha: float | None = None,
    mode: SearchMode = "hybrid",
) -> list[SearchHit]:
    """Embed the query with the index's own embedder and search the collection the alias points to."""
    from lorag.embedding.embedder import load_embedder
    from lorag.index.stores import open_store

    if not query.strip():
        raise ValueError("the query is empty: pass the question to search for, e.g. lorag search \"how do I ...\"")
    store = open_store(params)
    try:
        alias = params.index.name
        collection = store.get_alias(alias)
        state = store.load_state(alias)
        if collection is None or state is None:
            raise NoPublishedIndex(f"no index is published as '{alias}' yet: run `lorag reindex` first")
        embedder = load_embedder(params.embedding, root=params.root)
        if state["embedder"] != embedder.fingerprint:
            raise NoPublishedIndex(
                f"index '{alias}' was built with another embedding model than embedding.model="
                f"{params.embedding.model!r}: run `lorag reindex` (it rebuilds) or restore the model setting"
            )
        vector = embedder.embed([query])[0]
        return store.search(
            collection,
            query,
            vector,
            top_k=top_k or params.search.top_k,
            alpha=params.search.alpha if alpha is None else alpha,
            mode=mode,
        )
    finally:
        store.close()


def citation(hit: SearchHit) -> str:
    """How a passage is cited everywhere: path, then heading path when there is one."""
    return f"{hit.doc_id} > {hit.heading}" if hit.heading else hit.doc_id


def hits_as_json(hits: list[SearchHit]) -> list[dict[str, Any]]:
    return [{**asdict(h), "citation": citation(h)} for h in hits]
