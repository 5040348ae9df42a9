"""Where cache misses are embedded: in this process, or fanned out to the workers of a Dask cluster.

The driver stays in charge of everything stateful: it asks the content-addressed cache what is missing, cuts
the misses into batches, stores each finished batch in the cache, and (in the re-index) is the one writer of
the index. Workers only turn texts into vectors. What crosses to a worker is data: the validated embedding
settings, the expected fingerprint and the texts of one batch; what comes back is a float32 array.

Why dask.distributed directly and not a Prefect task runner: the re-index recipe is one library function that
the CLI, the DVC stage and the Prefect flow all call, so the fan-out belongs there to work in all three; and a
flow-level DaskTaskRunner would send every step (the store handles, the single writer) to the cluster too.

A worker that dies mid-batch loses nothing: the scheduler runs its batch again on another worker (Dask retries
a task whose worker died, `distributed.scheduler.allowed-failures` times), results are keyed by text hash and
rows by chunk id, so a batch computed twice is stored once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from lorag.config import EmbeddingParams
    from lorag.embedding.base import Embedder

# runner(batches) -> (batch index, vectors (len(batch), dim)) for every batch, in completion order.
BatchRunner = Callable[[Sequence[Sequence[str]]], Iterator[tuple[int, np.ndarray]]]


def local_runner(embedder: Embedder) -> BatchRunner:
    """Embed batch after batch in this process."""

    def run(batches: Sequence[Sequence[str]]) -> Iterator[tuple[int, np.ndarray]]:
        for i, texts in enumerate(batches):
            yield i, embedder.embed(list(texts))

    return run


def batch_runner(params: EmbeddingParams, root: Path, embedder: Embedder) -> BatchRunner:
    """The runner `embedding.runner` asks for. The local embedder is still loaded by the caller: it chunks with
    its tokenizer and its fingerprint names the vectors, whichever process computes them."""
    if params.runner == "dask":
        return DaskRunner(params, root, embedder.fingerprint)
    return local_runner(embedder)


class DaskRunner:
    """Submit each batch to a Dask cluster as a task; yield results as they finish."""

    def __init__(self, params: EmbeddingParams, root: Path, fingerprint: str) -> None:
        self.params, self.root, self.fingerprint = params, Path(root), fingerprint

    def __call__(self, batches: Sequence[Sequence[str]]) -> Iterator[tuple[int, np.ndarray]]:
        from distributed import Client, as_completed

        try:
            client = Client(self.params.cluster_address, timeout="30s")
        except OSError as exc:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at embedding.cluster_address={self.params.cluster_address}: "
                f"{exc}. Start the cluster (infra/scale-out.md) or set embedding.runner: local."
            ) from exc
        settings = self.params.model_dump(mode="json")
        with client:
            futures = {
                client.submit(embed_batch, settings, str(self.root), self.fingerprint, list(texts), pure=False): i
                for i, texts in enumerate(batches)
            }
            for future in as_completed(futures):
                yield futures[future], np.asarray(future.result(), dtype=np.float32)


def embed_batch(settings: dict[str, Any], root: str, fingerprint: str, texts: list[str]) -> np.ndarray:
    """Runs on a worker: load the embedder once per worker process and embed one batch.

    Refuses to return vectors of another model than the driver's (a worker with a different model file or
    library version): vectors of two embedders must never meet in one index or cache.
    """
    from lorag.config import EmbeddingParams
    from lorag.embedding.embedder import load_embedder

    params = EmbeddingParams(**{**settings, "runner": "local", "cluster_address": None})
    embedder = load_embedder(params, root=Path(root))
    if embedder.fingerprint != fingerprint:
        raise RuntimeError(
            f"worker embedder {embedder.fingerprint[:12]} is not the driver's {fingerprint[:12]}: install the same "
            f"model ({params.model}) and lorag version on every Dask worker"
        )
    return embedder.embed(texts)
