"""Embed texts through the cache: reuse what is cached, compute only the misses, store each batch as it finishes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lorag.corpus.model import text_hash
from lorag.embedding.cache import EmbeddingCache
from lorag.embedding.embedder import Embedder
from lorag.embedding.fanout import BatchRunner, local_runner


@dataclass(frozen=True)
class EmbedResult:
    vectors: dict[str, np.ndarray]  # text hash -> float32 (dim,), for every input
    computed: int
    reused: int


def embed_texts(
    embedder: Embedder,
    cache: EmbeddingCache,
    texts_by_hash: dict[str, str],
    on_progress: Callable[[int], None] | None = None,
    runner: BatchRunner | None = None,
) -> EmbedResult:
    """Vectors for every text, keyed by its text hash.

    Misses are sorted by token length across the whole set (not per batch, where the sort would gain little),
    then embedded by `runner` (default: this process; lorag.embedding.fanout for a cluster) and committed to the
    cache batch by batch as they finish, here, by this one writer: a run killed half-way keeps every finished
    batch. `on_progress(k)` gets increments: first the number reused from the cache, then each finished batch.
    """
    _check_keys(texts_by_hash)
    vectors = cache.get_many(embedder.fingerprint, texts_by_hash)
    reused = len(vectors)
    if on_progress is not None and reused:
        on_progress(reused)
    misses = [h for h in texts_by_hash if h not in vectors]
    if misses:
        order = embedder.length_order([texts_by_hash[h] for h in misses])
        misses = [misses[i] for i in order]
    batches = [misses[i : i + embedder.batch_size] for i in range(0, len(misses), embedder.batch_size)]
    run = runner or local_runner(embedder)
    # Nothing missing, nothing to run: a fully cached run never needs the cluster (it may be down).
    for i, computed in run([[texts_by_hash[h] for h in batch] for batch in batches]) if batches else ():
        fresh = dict(zip(batches[i], computed, strict=True))
        cache.put_many(embedder.fingerprint, fresh)
        vectors.update(fresh)
        if on_progress is not None:
            on_progress(len(fresh))
    return EmbedResult(vectors=vectors, computed=len(misses), reused=reused)


def _check_keys(texts_by_hash: dict[str, str]) -> None:
    """A key that is not the text's hash would store a vector under another text's address: refuse it."""
    for key, text in texts_by_hash.items():
        if text_hash(text) != key:
            raise ValueError(
                f"texts_by_hash key {key[:12]}... is not text_hash() of its text ({text[:40]!r}...). "
                f"Build the mapping as {{text_hash(t): t}} (lorag.corpus.model.text_hash)."
            )
