"""Helpers shared by the re-index integration tests: a sample-corpus project and index comparisons."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from lorag.config import Params, load_params
from lorag.index.stores import open_store

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DOCS = REPO / "sample" / "docs"


def copy_sample(root: Path, docs_dir: str = "data/docs") -> Path:
    target = root / docs_dir
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(SAMPLE_DOCS, target)
    return target


def params_of(root: Path, *overrides: str) -> Params:
    return load_params(root / "params.yaml", list(overrides))


def published_rows(params: Params) -> dict[str, tuple[Any, ...]]:
    """The published index as {chunk_id: (doc_id, text_hash, heading, start, end, ordinal, text, vector)}.

    The data revision a row was written in is left out on purpose: an incremental index keeps the revision of
    each chunk's last write, a from-scratch one stamps all rows with the newest revision.
    """
    store = open_store(params)
    try:
        collection = store.get_alias(params.index.name)
        assert collection is not None, "nothing published"
        out = {}
        for row in store.iter_rows(collection):
            m = row.meta
            out[m.chunk_id] = (m.doc_id, m.text_hash, m.heading, m.start, m.end, m.ordinal, row.text, row.vector)
        return out
    finally:
        store.close()


def assert_same_index(actual: dict[str, tuple[Any, ...]], expected: dict[str, tuple[Any, ...]]) -> None:
    """Same chunk ids (no lost, duplicate or stale chunks), same metadata and text, same vectors."""
    missing, stale = expected.keys() - actual.keys(), actual.keys() - expected.keys()
    assert not missing and not stale, f"missing {sorted(missing)[:5]}, stale {sorted(stale)[:5]}"
    for cid, want in expected.items():
        got = actual[cid]
        assert got[:7] == want[:7], f"{cid}: {got[:6]} != {want[:6]}"
        np.testing.assert_allclose(got[7], want[7], atol=1e-5)
