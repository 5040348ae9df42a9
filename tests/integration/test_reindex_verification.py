"""Verification proves what a re-index wrote, exactly, and never refuses a correct write.

Real documentation repeats blocks (front matter, license footers, navigation): identical texts get identical
vectors, so a ranked search for one of them returns an arbitrary few of the tied rows. These tests run the real
pipeline (DVC, GX, LanceDB, the embedding model) on a corpus where one block appears in 30 documents.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lorag.index.protocol import IndexRow
from lorag.index.stores import open_store
from lorag.reindex.apply import VerificationFailed, embed_plan, verify_plan, write_plan
from lorag.reindex.prepare import prepare, scan_documents
from lorag.reindex.run import run_reindex
from support.reindex import assert_same_index, params_of, published_rows

# Repeated at the top (a navigation banner before the first heading) and at the bottom (a license footer).
BANNER = "Handbook > Apiary operations > Seasonal notes. Maintained by the cooperative's volunteers.\n\n"
FOOTER = "## License\n\nThis page is part of the handbook. Licensed under CC BY 4.0; see LICENSE at the root.\n"
TOPICS = ["smoke", "frames", "queens", "drones", "pollen", "nectar", "wax", "propolis", "varroa", "swarms"]


def _docs(pages: int = 30) -> dict[str, str]:
    docs = {}
    for i in range(pages):
        topic = TOPICS[i % len(TOPICS)]
        body = BANNER + f"# Page {i}: {topic}\n\nNotes number {i} on {topic} for apiary volunteers, written for season {i}.\n\n"
        docs[f"section-{i % 3}/page-{i:02d}.md"] = body + FOOTER
    return docs


def _project(make_project, shared_embedding_cache, name="project"):
    # A rename-heavy commit deletes most old chunk ids: the deletion guard is not what these tests are about.
    overrides = {"embedding": {"cache_path": str(shared_embedding_cache)}, "index": {"write_batch": 16, "max_delete_ratio": 1.0}}
    return make_project(overrides, docs=_docs(), name=name)


def test_repeated_block_in_30_documents_publishes_and_equals_a_scratch_build(make_project, shared_embedding_cache):
    root = _project(make_project, shared_embedding_cache)
    params = params_of(root)
    first = run_reindex(params)
    assert first.verified["rows_checked"] == first.prepared.plan.expected_count == 90

    docs = root / "data" / "docs"
    pages = sorted(docs.rglob("page-*.md"))
    (docs / "moved").mkdir()
    for path in pages[:20]:  # a rename-heavy commit...
        path.rename(docs / "moved" / path.name)
    for path in pages[20:]:  # ...that also edits the repeated block in place
        path.write_text(path.read_text().replace("CC BY 4.0", "CC BY-SA 4.0"))
    second = run_reindex(params)
    assert second.prepared.mode == "incremental"
    assert second.prepared.changes.counts()["renamed"] == 20
    assert second.verified["rows_checked"] == len(second.prepared.plan.upserts) >= 20
    assert second.verified["sample_queries"] == 5

    scratch = make_project({"embedding": {"cache_path": str(shared_embedding_cache)}}, docs={}, name="scratch")
    shutil.rmtree(scratch / "data" / "docs")
    shutil.copytree(docs, scratch / "data" / "docs")
    run_reindex(params_of(scratch))
    assert_same_index(published_rows(params), published_rows(params_of(scratch)))


def _written(params):
    """Run the steps of a first build up to (not including) verification; returns what verify_plan needs."""
    from lorag.embedding.embedder import load_embedder

    embedder = load_embedder(params.embedding, root=params.root)
    store = open_store(params)
    prepared = prepare(params, scan_documents(params), store, embedder)
    embedded = embed_plan(params, prepared, embedder)
    write_plan(store, prepared, embedded, embedder.dim)
    return store, prepared, embedded


def test_verification_names_the_check_that_failed(make_project, shared_embedding_cache):
    root = _project(make_project, shared_embedding_cache)
    store, prepared, embedded = _written(params_of(root))
    with store:
        assert verify_plan(store, prepared, embedded)["rows_checked"] == 90
        chunk = prepared.plan.upserts[7]
        row = store.fetch_rows(prepared.collection, [chunk.chunk_id])[chunk.chunk_id]
        store.upsert(prepared.collection, [IndexRow(row.meta, row.text, -row.vector)])  # a corrupted vector
        with pytest.raises(VerificationFailed, match="every written row is stored.*different vector"):
            verify_plan(store, prepared, embedded)
        store.delete(prepared.collection, [chunk.chunk_id])
        with pytest.raises(VerificationFailed, match=f"{chunk.chunk_id}.*is missing"):
            verify_plan(store, prepared, embedded)


def test_smoke_queries_are_sampled_at_random_and_recorded(make_project, shared_embedding_cache):
    root = _project(make_project, shared_embedding_cache)
    store, prepared, embedded = _written(params_of(root))
    with store:
        a = verify_plan(store, prepared, embedded, seed=1)
        b = verify_plan(store, prepared, embedded, seed=1)
        c = verify_plan(store, prepared, embedded)
    assert a == b and a["sample_seed"] == 1  # a recorded seed replays the same sample
    assert c["sample_seed"] != 1 or c == a
    assert a["sample_queries_found"] == a["sample_queries"] == 5  # any row with the same text counts as found
    assert np.isfinite(a["chunks"])
