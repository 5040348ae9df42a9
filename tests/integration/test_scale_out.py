"""Embedding fanned out to a real Dask cluster (a LocalCluster of 2 worker processes on this machine): the index
it builds equals the in-process build, and a worker killed mid-run loses and duplicates nothing."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from lorag.config import load_params
from lorag.corpus.model import text_hash
from lorag.embedding.cache import EmbeddingCache
from lorag.embedding.embedder import load_embedder
from lorag.embedding.fanout import DaskRunner
from lorag.embedding.pipeline import embed_texts
from lorag.index.stores import open_store
from lorag.reindex.run import run_reindex

pytestmark = pytest.mark.slow  # two worker processes each load the embedding model (~20 s in all)

DOCS = {
    f"topic{i}.md": f"# Topic {i}\n\nParagraph {i} about bees, hives and honey number {i}. " * 3 + "\n"
    for i in range(12)
}


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    # Worker processes inherit OMP_NUM_THREADS=1 from the test environment: one core each.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        with Client(local) as client:
            client.wait_for_workers(2, timeout=120)
        yield local


def _rows(params) -> dict[str, tuple]:
    with open_store(params) as store:
        collection = store.get_alias(params.index.name)
        return {r.meta.chunk_id: (r.meta, r.text, r.vector) for r in store.iter_rows(collection)}


def test_dask_build_equals_in_process_build(make_project, cluster) -> None:
    local = load_params(make_project(docs=DOCS, name="local") / "params.yaml")
    dask = load_params(
        make_project({"embedding": {"runner": "dask", "cluster_address": cluster.scheduler_address}},
                     docs=DOCS, name="dask") / "params.yaml"
    )

    built_here, built_there = run_reindex(local), run_reindex(dask)

    assert built_there.embeddings_computed == built_here.embeddings_computed > 0
    here, there = _rows(local), _rows(dask)
    assert here.keys() == there.keys()
    for chunk_id, (meta, text, vector) in here.items():
        other_meta, other_text, other_vector = there[chunk_id]
        assert (meta.doc_id, meta.text_hash, meta.heading, text) == (other_meta.doc_id, other_meta.text_hash,
                                                                   other_meta.heading, other_text)
        assert np.allclose(vector, other_vector, atol=1e-5)


def test_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path, make_project, cluster) -> None:
    from distributed import Client

    params = load_params(make_project({"embedding": {"batch_size": 4}}, name="kill") / "params.yaml")
    embedder = load_embedder(params.embedding, root=params.root)
    texts = [f"Sentence {i} about a hive that moved {i} metres north." for i in range(48)]
    by_hash = {text_hash(t): t for t in texts}
    dask_params = params.embedding.model_copy(update={"runner": "dask", "cluster_address": cluster.scheduler_address})
    with Client(cluster.scheduler_address) as client:
        pids = list(client.run(os.getpid).values())
    killed: list[int] = []

    def kill_one_worker(done: int) -> None:  # after the first finished batch: SIGKILL a worker mid-run
        if not killed:
            killed.append(pids[0])
            os.kill(pids[0], signal.SIGKILL)

    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    runner = DaskRunner(dask_params, params.root, embedder.fingerprint)
    result = embed_texts(embedder, cache, by_hash, on_progress=kill_one_worker, runner=runner)

    assert killed, "the worker was never killed: the test did not test a failure"
    assert result.computed == len(by_hash) and result.reused == 0
    assert result.vectors.keys() == by_hash.keys()
    assert cache.stats().rows == len(by_hash)  # each text stored once, none lost
    expected = embedder.embed(texts)
    for i, text in enumerate(texts):
        assert np.allclose(result.vectors[text_hash(text)], expected[i], atol=1e-5)


def test_dask_runner_needs_an_address() -> None:
    from pydantic import ValidationError

    from lorag.config import EmbeddingParams

    with pytest.raises(ValidationError, match="cluster_address"):
        EmbeddingParams(runner="dask")


def test_a_fully_cached_run_never_contacts_the_cluster(tmp_path, make_project) -> None:
    """Everything in the cache: nothing to embed, so a scheduler that is down must not fail the run."""
    params = load_params(make_project(name="cached") / "params.yaml")
    embedder = load_embedder(params.embedding, root=params.root)
    texts = {text_hash(t): t for t in ("A cached sentence about hives.", "Another cached sentence.")}
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    embed_texts(embedder, cache, texts)  # fill the cache in-process
    down = params.embedding.model_copy(update={"runner": "dask", "cluster_address": "tcp://127.0.0.1:9"})

    result = embed_texts(embedder, cache, texts, runner=DaskRunner(down, params.root, embedder.fingerprint))

    assert result.reused == 2 and result.computed == 0
