"""lorag's side of the re-index replay: the project, its runs, and the comparison with a from-scratch build."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchlib import make_project


def project_params(threads: int, versioning: bool = True) -> dict[str, Any]:
    return {
        "versioning": {"enabled": versioning},
        "embedding": {"threads": threads},
        # The synthetic rename step deletes a noticeable share of a small corpus; the guard is not under test.
        "index": {"max_delete_ratio": 1.0},
    }


def new_project(root: Path, threads: int, versioning: bool = True) -> Any:
    from lorag.config import load_params

    make_project(root, project_params(threads, versioning))
    return load_params(root / "params.yaml")


def seed_cache(params: Any, fingerprint: str, vectors: dict[str, np.ndarray]) -> None:
    from lorag.embedding.cache import EmbeddingCache

    EmbeddingCache(params.path(params.embedding.cache_path)).put_many(fingerprint, vectors)


def reindex(params: Any, full: bool = False) -> dict[str, Any]:
    from lorag.reindex.run import run_reindex

    started = time.perf_counter()
    result = run_reindex(params, full=full)
    wall = time.perf_counter() - started
    summary = result.summary()
    parts = {k: round(v, 3) for k, v in summary["seconds"].items()}
    # Every step is timed inside run_reindex (the MLflow record's open and finish too); what is left of the wall
    # time is the lock, opening the store and loading the embedder.
    timed = summary["seconds"]
    parts["other"] = round(wall - timed["total"] - timed.get("record_open", 0.0) - timed.get("record", 0.0), 3)
    parts["overhead"] = round(wall - summary["seconds"].get("embed", 0.0), 3)  # everything but embedding
    return {
        "mode": summary["mode"],
        "documents": summary["documents"],
        "chunks": summary["chunks"],
        "texts_embedded": summary["embeddings"]["computed"],
        "vectors_reused": summary["embeddings"]["reused"],
        "seconds": round(wall, 3),
        "seconds_breakdown": parts,
    }


def published_rows(params: Any) -> dict[str, tuple[Any, ...]]:
    """{chunk_id: (doc_id, text_hash, heading, start, end, ordinal, text, vector)}; data_rev left out on purpose
    (an incremental index keeps each row's last-write revision, a fresh build stamps the newest)."""
    from lorag.index.stores import open_store

    store = open_store(params)
    try:
        collection = store.get_alias(params.index.name)
        out = {}
        for row in store.iter_rows(collection):
            m = row.meta
            out[m.chunk_id] = (m.doc_id, m.text_hash, m.heading, m.start, m.end, m.ordinal, row.text, row.vector)
        return out
    finally:
        store.close()


def compare(actual: dict[str, tuple[Any, ...]], expected: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
    missing = expected.keys() - actual.keys()
    stale = actual.keys() - expected.keys()
    meta_diff = [c for c in expected.keys() & actual.keys() if actual[c][:7] != expected[c][:7]]
    vec_diff = [c for c in expected.keys() & actual.keys()
                if not np.allclose(actual[c][7], expected[c][7], atol=1e-5)]
    return {
        "equal": not (missing or stale or meta_diff or vec_diff),
        "chunks": len(actual),
        "chunks_from_scratch": len(expected),
        "missing": len(missing),
        "stale": len(stale),
        "metadata_or_text_differs": len(meta_diff),
        "vector_differs": len(vec_diff),
    }


def check_from_scratch(params: Any, workdir: Path, threads: int, label: str) -> dict[str, Any]:
    """Build the same docs folder from scratch in a new project and compare the published rows.

    The new project gets a copy of the replay project's embedding cache (content-addressed: text hash + model
    fingerprint), so this checks the index (rows, ids, metadata, text, which vector goes where), not the model.
    """
    root = workdir / f"scratch-{label}"
    shutil.rmtree(root, ignore_errors=True)
    fresh = new_project(root, threads, versioning=False)
    shutil.rmtree(fresh.path(fresh.corpus.docs_dir))
    shutil.copytree(params.path(params.corpus.docs_dir), fresh.path(fresh.corpus.docs_dir))
    cache = fresh.path(fresh.embedding.cache_path)
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(params.path(params.embedding.cache_path), cache)
    started = time.perf_counter()
    reindex(fresh, full=True)
    out = compare(published_rows(params), published_rows(fresh))
    out["seconds"] = round(time.perf_counter() - started, 2)
    shutil.rmtree(root, ignore_errors=True)
    return out


def recheck_vectors(params: Any, embedder: Any, n: int = 64, seed: int = 0) -> dict[str, Any]:
    """Re-embed a random sample of published texts now and compare with the stored vectors."""
    rows = published_rows(params)
    rng = np.random.default_rng(seed)
    ids = sorted(rows)
    pick = [ids[i] for i in rng.choice(len(ids), size=min(n, len(ids)), replace=False)]
    fresh = embedder.embed([rows[c][6] for c in pick])
    cos = [float(np.dot(fresh[i], rows[c][7])) for i, c in enumerate(pick)]
    return {"sampled": len(pick), "min_cosine": round(min(cos), 6)}
