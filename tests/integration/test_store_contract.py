"""One contract for every index store: the embedded LanceDB store always, Weaviate when WEAVIATE_URL answers.

Vectors are random unit vectors (seeded) so the tests need no embedding model; texts are realistic so BM25
behaves as it does on documentation.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from lorag.index.protocol import IndexRow, IndexStore, IndexStoreError, RowMeta

DIM = 32
RARE = "zymurgy"

TEXTS = {
    "guide/install.md": [
        "Install the package with pip into a fresh virtual environment before running any command.",
        "The installer checks the Python version and refuses anything older than 3.11.",
        "Offline installs work from a wheelhouse: download the wheels once and point pip at the folder.",
        "Brewing notes: zymurgy is the branch of chemistry that studies fermentation in brewing.",
    ],
    "guide/search.md": [
        "Hybrid search blends keyword relevance with vector similarity; alpha sets the balance between them.",
        "Full-text search ranks chunks with BM25, so rare words in a question weigh more than common ones.",
        "Dense retrieval embeds the question and returns the chunks whose vectors lie closest to it.",
        "Results carry the document path, heading and character offsets so answers can cite their sources.",
    ],
    "guide/index.md": [
        "Re-indexing is incremental: only documents whose content changed are chunked and embedded again.",
        "Every chunk id is derived from the document path and the chunk text, so re-runs never duplicate rows.",
        "Deleted documents lose their chunks after the new rows are written, never before.",
        "A full rebuild writes a new collection and moves the alias once verification passes.",
    ],
    "ops/backup.md": [
        "Back up the index directory while no re-index is running, or snapshot the volume it lives on.",
        "Restoring a backup means copying the directory back and pointing the alias at the restored collection.",
        "Old collections are pruned after a rebuild, keeping the last two for a quick rollback.",
    ],
    "ops/monitoring.md": [
        "Drift checks compare recent questions with the indexed corpus and open a re-index when they diverge.",
        "Latency of hybrid search is recorded per query so regressions show up on the dashboard.",
        "Alerts fire when the share of unanswered questions rises above the configured threshold.",
    ],
    "faq/it's-odd.md": [
        "Quotes in document paths, like it's-odd.md, must never break a filter or a delete predicate.",
        "Questions with punctuation such as C++, \"quoted phrases\" or key: value pairs are plain words here.",
    ],
}


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_rows(seed: int = 7, data_rev: str = "rev1") -> list[IndexRow]:
    texts = [(doc, i, t) for doc, chunks in TEXTS.items() for i, t in enumerate(chunks)]
    vectors = unit(np.random.default_rng(seed), len(texts))
    rows = []
    for (doc, ordinal, text), vector in zip(texts, vectors):
        meta = RowMeta(
            chunk_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc}#{ordinal}")),
            doc_id=doc,
            text_hash=f"h{abs(hash(text)) % 10**12}",
            heading=doc.split("/")[-1].removesuffix(".md").title(),
            start=ordinal * 200,
            end=ordinal * 200 + len(text),
            ordinal=ordinal,
            data_rev=data_rev,
        )
        rows.append(IndexRow(meta=meta, text=text, vector=vector))
    return rows


def rare_row(rows: list[IndexRow]) -> IndexRow:
    return next(r for r in rows if RARE in r.text)


@dataclass
class Backend:
    store: IndexStore
    reopen: Callable[[], IndexStore]  # a fresh store on the same data (new process, new connection)
    prefix: str  # every collection and alias a test creates starts with it (cleanup on shared servers)

    def name(self, suffix: str) -> str:
        return f"{self.prefix}_{suffix}"


def _lancedb(tmp_path: Path, prefix: str) -> Iterator[Backend]:
    from lorag.index.lancedb_store import LanceDBStore

    path = tmp_path / "index"
    opened: list[IndexStore] = [LanceDBStore(path)]

    def reopen() -> IndexStore:
        opened.append(LanceDBStore(path))
        return opened[-1]

    yield Backend(opened[0], reopen, prefix)
    for store in opened:
        store.close()


def _weaviate_url_or_skip() -> str:
    url = os.environ.get("WEAVIATE_URL", "").strip()
    try:
        if url:
            with urllib.request.urlopen(f"{url.rstrip('/')}/v1/.well-known/ready", timeout=3) as resp:
                if resp.status == 200:
                    return url
    except (urllib.error.URLError, OSError, ValueError):
        pass
    pytest.skip(
        f"Weaviate not reachable at WEAVIATE_URL={url!r}: set WEAVIATE_URL to run the Weaviate contract tests"
    )


def _weaviate(prefix: str) -> Iterator[Backend]:
    from weaviate.classes.query import Filter

    from lorag.config import WeaviateParams
    from lorag.index.weaviate_store import PREFIX, STATE_COLLECTION, WeaviateStore, connect_weaviate

    _weaviate_url_or_skip()
    params = WeaviateParams()
    opened: list[IndexStore] = [WeaviateStore(connect_weaviate(params))]

    def reopen() -> IndexStore:
        opened.append(WeaviateStore(connect_weaviate(params)))
        return opened[-1]

    yield Backend(opened[0], reopen, prefix)
    client = connect_weaviate(params)
    try:  # remove what this test made: aliases first (they pin collections), then collections, then states
        for alias in client.alias.list_all():
            if alias.startswith(PREFIX + prefix):
                client.alias.delete(alias_name=alias)
        for name in client.collections.list_all(simple=True):
            if name.startswith(PREFIX + prefix):
                client.collections.delete(name)
        if client.collections.exists(STATE_COLLECTION):
            states = client.collections.use(STATE_COLLECTION)
            states.data.delete_many(where=Filter.by_property("alias").like(f"{prefix}*"))
    finally:
        client.close()
        for store in opened:
            store.close()


@pytest.fixture(params=["lancedb", "weaviate"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    if request.param == "lancedb":
        yield from _lancedb(tmp_path, prefix)
    else:
        yield from _weaviate(prefix)


@pytest.fixture
def filled(backend: Backend) -> tuple[Backend, str, list[IndexRow]]:
    rows = make_rows()
    name = backend.name("docs")
    backend.store.create_collection(name, DIM)
    backend.store.upsert(name, rows)
    return backend, name, rows


def ids(hits: list) -> list[str]:
    return [h.chunk_id for h in hits]


# -- collections -----------------------------------------------------------------------------------------------
def test_create_list_drop(backend: Backend) -> None:
    store, a, b = backend.store, backend.name("a"), backend.name("b")
    store.create_collection(a, DIM)
    store.create_collection(b, DIM)
    with pytest.raises(IndexStoreError, match="already exists"):  # a build never writes into a collection that exists
        store.create_collection(a, DIM)
    mine = [n for n in store.list_collections() if n.startswith(backend.prefix)]
    assert mine == sorted([a, b])
    assert all(not n.startswith("_") for n in store.list_collections())  # the meta table is not a collection
    assert store.count(a) == 0
    store.drop_collection(b)
    store.drop_collection(b)  # idempotent
    assert [n for n in store.list_collections() if n.startswith(backend.prefix)] == [a]
    with pytest.raises(IndexStoreError, match="does not exist"):
        store.count(b)
    with pytest.raises(ValueError, match="invalid"):
        store.create_collection("1-bad name", DIM)


# -- writes ----------------------------------------------------------------------------------------------------
def test_fetch_rows_returns_stored_rows_by_id(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    wanted = rows[::3]
    got = backend.store.fetch_rows(name, [r.meta.chunk_id for r in wanted] + ["no-such-chunk"])
    assert set(got) == {r.meta.chunk_id for r in wanted}  # absent ids are simply missing
    for row in wanted:
        stored = got[row.meta.chunk_id]
        assert stored.meta == row.meta and stored.text == row.text
        np.testing.assert_allclose(stored.vector, row.vector, atol=1e-6)
    assert backend.store.fetch_rows(name, []) == {}


def test_repeated_text_is_stored_and_fetched_row_by_row(backend: Backend) -> None:
    """Real documentation repeats blocks (front matter, license footers): 30 rows with one text and one vector.

    A ranked search returns at most top_k of the tied rows, so it cannot prove a given row was written; the
    exact lookup by id must return every one of them, also after an edit that rewrites some of them.
    """
    store, name = backend.store, backend.name("repeated")
    block = "Licensed under the Apache License, Version 2.0. See the LICENSE file at the root for details."
    vector = unit(np.random.default_rng(3), 1)[0]
    rows = [
        IndexRow(RowMeta(f"chunk-{i:02d}", f"docs/page-{i:02d}.md", "h-license", "License", 0, len(block), 0, "r1"),
                 block, vector)
        for i in range(30)
    ]
    store.create_collection(name, DIM)
    store.upsert(name, rows)
    hits = store.search(name, block, vector, top_k=5, alpha=1.0, mode="dense")
    assert len(hits) == 5 and all(h.text == block for h in hits)
    assert set(store.fetch_rows(name, [r.meta.chunk_id for r in rows])) == {r.meta.chunk_id for r in rows}

    edited = "Licensed under the MIT License. See the LICENSE file at the root for details."
    rewritten = [replace(r, text=edited, meta=replace(r.meta, text_hash="h-mit", data_rev="r2")) for r in rows[:12]]
    store.upsert(name, rewritten)
    got = store.fetch_rows(name, [r.meta.chunk_id for r in rows])
    assert len(got) == 30 and store.count(name) == 30
    assert sum(g.meta.text_hash == "h-mit" for g in got.values()) == 12


def test_upsert_is_idempotent(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    backend.store.upsert(name, rows)
    backend.store.upsert(name, rows[:5])
    assert backend.store.count(name) == len(rows)
    assert set(backend.store.fetch_meta(name)) == {r.meta.chunk_id for r in rows}


def test_update_changes_text_meta_and_vector(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    store, old = backend.store, rows[1]
    new_vector = unit(np.random.default_rng(99), 1)[0]
    new_meta = replace(old.meta, text_hash="hnew", heading="Requirements", end=old.meta.start + 40, data_rev="rev2")
    store.upsert(name, [IndexRow(new_meta, "A quokka now explains the installer requirements.", new_vector)])
    assert store.count(name) == len(rows)
    assert store.fetch_meta(name, [old.meta.doc_id])[old.meta.chunk_id] == new_meta
    stored = {r.meta.chunk_id: r for r in store.iter_rows(name)}[old.meta.chunk_id]
    assert stored.text.startswith("A quokka")
    np.testing.assert_allclose(stored.vector, new_vector, atol=1e-6)
    assert ids(store.search(name, "quokka", new_vector, 3, 0.0, mode="fulltext"))[:1] == [old.meta.chunk_id]
    # The replaced text is gone from the full-text index too.
    assert old.meta.chunk_id not in ids(store.search(name, "Python version", new_vector, 10, 0.0, "fulltext"))
    assert ids(store.search(name, "", new_vector, 1, 1.0, mode="dense")) == [old.meta.chunk_id]


def test_delete_by_ids(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    gone = [r.meta.chunk_id for r in rows[:3]]
    assert backend.store.delete(name, [*gone, str(uuid.uuid4())]) == 3
    assert backend.store.delete(name, gone) == 0  # re-run after a crash: nothing left to delete
    assert backend.store.count(name) == len(rows) - 3
    assert not set(gone) & set(backend.store.fetch_meta(name))
    assert backend.store.delete(name, []) == 0


# -- reads -----------------------------------------------------------------------------------------------------
def test_fetch_meta_with_and_without_doc_filter(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    everything = backend.store.fetch_meta(name)
    assert everything == {r.meta.chunk_id: r.meta for r in rows}
    docs = ["guide/search.md", "faq/it's-odd.md", "missing.md"]
    some = backend.store.fetch_meta(name, docs)
    assert some == {r.meta.chunk_id: r.meta for r in rows if r.meta.doc_id in docs}
    assert {m.doc_id for m in some.values()} == {"guide/search.md", "faq/it's-odd.md"}
    assert backend.store.fetch_meta(name, []) == {}


def test_iter_rows_round_trip(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    stored = {r.meta.chunk_id: r for r in backend.store.iter_rows(name)}
    assert set(stored) == {r.meta.chunk_id for r in rows}
    for row in rows:
        got = stored[row.meta.chunk_id]
        assert got.meta == row.meta
        assert got.text == row.text
        assert got.vector.dtype == np.float32 and got.vector.shape == (DIM,)
        np.testing.assert_allclose(got.vector, row.vector, atol=1e-6)


# -- search ----------------------------------------------------------------------------------------------------
def test_dense_returns_the_row_first_for_its_own_vector(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    for row in rows[::4]:
        hits = backend.store.search(name, row.text, row.vector, 5, 1.0, mode="dense")
        assert len(hits) == 5
        assert hits[0].chunk_id == row.meta.chunk_id
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert (hits[0].doc_id, hits[0].text, hits[0].start, hits[0].end, hits[0].data_rev) == (
            row.meta.doc_id, row.text, row.meta.start, row.meta.end, row.meta.data_rev,
        )  # fmt: skip


def test_fulltext_finds_a_rare_word(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    target = rare_row(rows)
    hits = backend.store.search(name, f"what is {RARE}?", rows[0].vector, 5, 0.0, mode="fulltext")
    assert ids(hits) == [target.meta.chunk_id]  # the only chunk holding the word; no vector-only filler
    assert hits[0].score > 0
    # Quotes, colons and operators in a question are words, not query syntax.
    odd = backend.store.search(name, 'C++ "quoted phrases" key: value AND', rows[0].vector, 5, 0.0, "fulltext")
    assert odd and odd[0].doc_id == "faq/it's-odd.md"


def test_hybrid_alpha_extremes_match_single_modes(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    store, query = backend.store, "hybrid search vector similarity"
    vector = unit(np.random.default_rng(5), 1)[0]
    dense = store.search(name, query, vector, 5, 1.0, mode="dense")
    assert ids(store.search(name, query, vector, 5, 1.0, mode="hybrid")) == ids(dense)
    fulltext = store.search(name, query, vector, 5, 0.0, mode="fulltext")
    assert 2 <= len(fulltext) <= 5
    by_text = store.search(name, query, vector, 5, 0.0, mode="hybrid")[: len(fulltext)]
    # Same hits in the same BM25 order (equal BM25 scores may come in either order).
    assert set(ids(by_text)) == set(ids(fulltext))
    bm25 = {h.chunk_id: h.score for h in fulltext}
    assert [bm25[c] for c in ids(by_text)] == pytest.approx([h.score for h in fulltext], rel=1e-4)


def test_hybrid_blends_both_lists(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    near = rows[-1]  # found by its vector only
    # Two full-text hits with different scores, so both normalisations have a real range on every backend.
    hits = backend.store.search(name, f"{RARE} pip", near.vector, 4, 0.5, mode="hybrid")
    assert {rare_row(rows).meta.chunk_id, near.meta.chunk_id} <= set(ids(hits))
    assert all(0.0 <= h.score <= 1.0 + 1e-6 for h in hits)


def test_query_vector_may_be_a_function_called_only_when_needed(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    """search() passes a function that embeds the query: full-text never calls it, the other modes call it once
    and answer exactly as with the vector itself."""
    backend, name, rows = filled
    calls: list[int] = []

    def embed() -> np.ndarray:
        calls.append(1)
        return rows[-1].vector

    assert ids(backend.store.search(name, RARE, embed, 5, 0.0, mode="fulltext")) == [rare_row(rows).meta.chunk_id]
    assert calls == []
    for mode in ("hybrid", "dense"):
        expected = ids(backend.store.search(name, f"{RARE} pip", rows[-1].vector, 4, 0.5, mode=mode))
        calls.clear()
        assert ids(backend.store.search(name, f"{RARE} pip", embed, 4, 0.5, mode=mode)) == expected
        assert calls == [1], mode


def test_blank_query_text_falls_back_to_dense(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    dense = ids(backend.store.search(name, "", rows[2].vector, 5, 1.0, mode="dense"))
    for mode in ("hybrid", "fulltext"):
        assert ids(backend.store.search(name, "   ", rows[2].vector, 5, 0.5, mode=mode)) == dense


def test_deleted_row_never_appears_in_any_mode(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    target = rare_row(rows)
    backend.store.delete(name, [target.meta.chunk_id])
    for mode, alpha in [("dense", 1.0), ("fulltext", 0.0), ("hybrid", 0.0), ("hybrid", 0.5), ("hybrid", 1.0)]:
        hits = backend.store.search(name, RARE, target.vector, 10, alpha, mode=mode)
        assert target.meta.chunk_id not in ids(hits), (mode, alpha)


def test_many_small_writes_stay_searchable(backend: Backend) -> None:
    """Enough separate writes to trigger the store's own index maintenance; search stays exact throughout."""
    store, name = backend.store, backend.name("small")
    store.create_collection(name, DIM)
    rows = make_rows()
    vectors = unit(np.random.default_rng(11), 40)
    for i, vector in enumerate(vectors):
        meta = replace(rows[0].meta, chunk_id=str(uuid.uuid4()), doc_id=f"notes/{i}.md", ordinal=i)
        store.upsert(name, [IndexRow(meta, f"note {i} mentions the codeword kiwi{i} once", vector)])
    written = store.fetch_meta(name)
    assert len(written) == store.count(name) == 40
    by_doc = {m.doc_id: m.chunk_id for m in written.values()}
    store.delete(name, [by_doc[f"notes/{i}.md"] for i in range(0, 40, 2)])
    for i in (1, 2, 37, 38):
        chunk_id = by_doc[f"notes/{i}.md"]
        found = ids(store.search(name, f"kiwi{i}", vectors[i], 3, 0.0, mode="fulltext"))
        nearest = ids(store.search(name, "", vectors[i], 1, 1.0, mode="dense"))
        if i % 2:  # kept
            assert found == [chunk_id] and nearest == [chunk_id]
        else:  # deleted
            assert found == [] and chunk_id not in nearest


# -- aliases and state -----------------------------------------------------------------------------------------
def test_alias_set_get_swap(backend: Backend) -> None:
    store, alias, a, b = backend.store, backend.name("live"), backend.name("v1"), backend.name("v2")
    store.create_collection(a, DIM)
    store.create_collection(b, DIM)
    assert store.get_alias(alias) is None
    store.set_alias(alias, a)
    assert store.get_alias(alias) == a
    store.set_alias(alias, b)
    assert store.get_alias(alias) == b
    store.set_alias(alias, b)  # idempotent
    assert store.get_alias(alias) == b
    assert alias not in store.list_collections()
    with pytest.raises(IndexStoreError, match="no such collection"):
        store.set_alias(alias, backend.name("missing"))
    assert store.get_alias(alias) == b


def test_state_round_trip(backend: Backend) -> None:
    store, alias = backend.store, backend.name("live")
    assert store.load_state(alias) is None
    state = {"collection": "x_v1", "chunk_count": 42, "manifest": {"a.md": "md5", "it's.md": "m2"}, "pending": None}
    store.save_state(alias, state)
    assert store.load_state(alias) == state
    newer = {**state, "chunk_count": 43, "pending": ["a.md"]}
    store.save_state(alias, newer)
    assert store.load_state(alias) == newer
    assert store.load_state(backend.name("other")) is None


def test_dropping_an_aliased_collection_is_refused(backend: Backend) -> None:
    store, alias, a, b = backend.store, backend.name("live"), backend.name("v1"), backend.name("v2")
    store.create_collection(a, DIM)
    store.create_collection(b, DIM)
    store.set_alias(alias, a)
    with pytest.raises(IndexStoreError, match="alias"):
        store.drop_collection(a)
    assert a in store.list_collections()
    store.set_alias(alias, b)
    store.drop_collection(a)
    assert a not in store.list_collections()


def test_reopened_store_sees_everything(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    alias = backend.name("live")
    backend.store.set_alias(alias, name)
    backend.store.save_state(alias, {"collection": name, "chunk_count": len(rows)})
    backend.store.delete(name, [rows[0].meta.chunk_id])
    backend.store.close()
    store = backend.reopen()
    assert name in store.list_collections()
    assert store.count(name) == len(rows) - 1
    assert store.get_alias(alias) == name
    assert store.load_state(alias) == {"collection": name, "chunk_count": len(rows)}
    assert store.fetch_meta(name) == {r.meta.chunk_id: r.meta for r in rows[1:]}
    assert ids(store.search(name, RARE, rows[5].vector, 1, 1.0, mode="dense")) == [rows[5].meta.chunk_id]
    assert ids(store.search(name, RARE, rows[5].vector, 1, 0.0, mode="fulltext")) == [rare_row(rows).meta.chunk_id]


def test_a_second_open_store_sees_new_writes(filled: tuple[Backend, str, list[IndexRow]]) -> None:
    backend, name, rows = filled
    other = backend.reopen()  # e.g. the search task of a flow, opened before the write task finished
    assert other.count(name) == len(rows)
    extra = replace(rows[0].meta, chunk_id=str(uuid.uuid4()), doc_id="late.md")
    backend.store.upsert(name, [IndexRow(extra, "A late page about pomegranates.", rows[0].vector)])
    backend.store.delete(name, [rows[1].meta.chunk_id])
    assert other.count(name) == len(rows)
    assert ids(other.search(name, "pomegranates", rows[0].vector, 3, 0.0, mode="fulltext")) == [extra.chunk_id]
    assert rows[1].meta.chunk_id not in other.fetch_meta(name)


# -- embedded store only ---------------------------------------------------------------------------------------
def test_relative_score_fusion_values() -> None:
    from lorag.index.fusion import relative_score_fusion
    from lorag.index.protocol import SearchHit

    def hit(cid: str, score: float) -> SearchHit:
        return SearchHit(cid, "d", "", "", 0, 1, score, "r")

    dense = [hit("a", 0.9), hit("b", 0.7), hit("c", 0.5)]  # normalised: a 1, b 0.5, c 0
    text = [hit("c", 8.0), hit("d", 2.0)]  # normalised: c 1, d 0
    fused = relative_score_fusion(dense, text, 0.25, 4)
    assert [(h.chunk_id, round(h.score, 6)) for h in fused] == [("c", 0.75), ("a", 0.25), ("b", 0.125), ("d", 0.0)]
    assert [h.chunk_id for h in relative_score_fusion(dense, text, 1.0, 3)] == ["a", "b", "c"]
    assert [h.chunk_id for h in relative_score_fusion(dense, text, 0.0, 2)] == ["c", "d"]
    assert [h.chunk_id for h in relative_score_fusion([], [hit("x", 3.0)], 0.5, 5)] == ["x"]


# -- embedded store only: the ANN index keeps exact answers --------------------------------------------------
def test_lancedb_ann_index_keeps_recall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lorag.index import lancedb_store
    from lorag.index.lancedb_store import LanceDBStore

    # Build the IVF index at a test-sized collection instead of the production threshold.
    monkeypatch.setattr(lancedb_store, "ANN_MIN_ROWS", 3000)
    monkeypatch.setattr(lancedb_store, "ANN_ROWS_PER_PARTITION", 256)
    store = LanceDBStore(tmp_path / "index")
    store.create_collection("big", DIM)
    template = make_rows()[0]
    vectors = unit(np.random.default_rng(3), 3200)
    for start in range(0, 3200, 800):
        store.upsert("big", [
            IndexRow(replace(template.meta, chunk_id=str(uuid.uuid4()), ordinal=i), f"row {i}", vectors[i])
            for i in range(start, start + 800)
        ])  # fmt: skip
    table = store._table("big")
    assert any(ix.index_type != "FTS" for ix in table.list_indices()), "the vector index was not built"
    by_ordinal = {m.ordinal: cid for cid, m in store.fetch_meta("big").items()}
    rng = np.random.default_rng(4)
    for i in rng.choice(3200, size=25, replace=False):
        query = vectors[i] + rng.normal(scale=0.05, size=DIM).astype(np.float32)
        exact = int(np.argmax(vectors @ (query / np.linalg.norm(query))))
        hits = store.search("big", "", query / np.linalg.norm(query), 1, 1.0, mode="dense")
        assert ids(hits) == [by_ordinal[exact]]
    store.close()


def test_lancedb_full_text_index_covers_every_write(tmp_path: Path) -> None:
    """Rows a write adds are in the full-text index when the write returns (rows outside it are scanned on every
    query), and the index's segments are merged before they pile up."""
    from lorag.index.lancedb_store import MAX_FTS_SEGMENTS, LanceDBStore

    store = LanceDBStore(tmp_path / "index")
    store.create_collection("notes", DIM)
    template = make_rows()[0]
    vectors = unit(np.random.default_rng(5), 3 * MAX_FTS_SEGMENTS)
    segments = []
    for i, vector in enumerate(vectors):
        meta = replace(template.meta, chunk_id=str(uuid.uuid4()), doc_id=f"notes/{i}.md", ordinal=i)
        store.upsert("notes", [IndexRow(meta, f"note {i} mentions the codeword fig{i} once", vector)])
        stats = store._table("notes").index_stats("text_idx")
        assert stats.num_unindexed_rows == 0, f"write {i} left rows outside the full-text index"
        segments.append(stats.num_indices)
    assert max(segments) <= MAX_FTS_SEGMENTS and min(segments[MAX_FTS_SEGMENTS:]) == 1, segments  # merged
    for i in (0, MAX_FTS_SEGMENTS, len(vectors) - 1):
        hits = store.search("notes", f"fig{i}", vectors[i], 3, 0.0, mode="fulltext")
        assert [h.doc_id for h in hits] == [f"notes/{i}.md"]
    store.close()


def test_lancedb_vector_index_segments_stay_few_as_writes_go_on(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows written after the ANN index was built join it as index segments that are merged by size tier: the
    flat-scanned remainder stays under VECTOR_SEGMENT_ROWS and the segments stay logarithmic in the rows added
    (one segment per write made a 1M-row table 635 segments deep), and every row is still found."""
    from lorag.index import lancedb_store
    from lorag.index.lancedb_store import LanceDBStore

    monkeypatch.setattr(lancedb_store, "ANN_MIN_ROWS", 1000)
    monkeypatch.setattr(lancedb_store, "ANN_ROWS_PER_PARTITION", 500)
    monkeypatch.setattr(lancedb_store, "VECTOR_SEGMENT_ROWS", 100)
    store = LanceDBStore(tmp_path / "index")
    store.create_collection("big", DIM)
    template = make_rows()[0]
    vectors = unit(np.random.default_rng(6), 1000 + 40 * 60)
    sizes = [1000] + [60] * 40  # the build (1000 rows), then 40 writes of 60 rows: 2,400 rows, 24 segments' worth
    segments, start = [], 0
    for size in sizes:
        store.upsert("big", [
            IndexRow(replace(template.meta, chunk_id=str(uuid.uuid4()), ordinal=i), f"row {i}", vectors[i])
            for i in range(start, start + size)
        ])  # fmt: skip
        start += size
        table = store._table("big")
        vec = next(ix.name for ix in table.list_indices() if ix.index_type != "FTS")
        stats = table.index_stats(vec)
        assert stats.num_unindexed_rows < 100, f"after {start} rows, {stats.num_unindexed_rows} rows are unindexed"
        segments.append(stats.num_indices)
    # the built index plus at most log2(2400 / 100) + 1 tiers; one segment per indexing would be 24
    assert max(segments) <= 1 + 6 and segments[-1] < 24, segments
    by_ordinal = {m.ordinal: cid for cid, m in store.fetch_meta("big").items()}
    for i in (0, 999, 1000, 2000, 3399):
        hits = store.search("big", "", vectors[i], 1, 1.0, mode="dense")
        assert ids(hits) == [by_ordinal[i]], f"row {i} was not its own nearest neighbour"
    store.close()
