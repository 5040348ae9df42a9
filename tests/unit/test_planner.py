"""Change planning: manifests -> document changes -> index writes. Pure functions, no I/O."""

from lorag.corpus.model import Chunk, chunk_uuid, text_hash
from lorag.index.planner import diff_manifests, duplicate_paths, plan_writes, split_documents
from lorag.index.protocol import RowMeta


def test_diff_classifies_every_kind_of_change():
    old = {"a.md": "1", "b.md": "2", "c.md": "3", "d.md": "4"}
    new = {"a.md": "1", "b.md": "22", "moved/c.md": "3", "e.md": "5"}
    changes = diff_manifests(old, new)
    assert changes.unchanged == ("a.md",)
    assert changes.modified == ("b.md",)
    assert dict(changes.renamed) == {"moved/c.md": "c.md"}
    assert changes.deleted == ("d.md",)
    assert changes.added == ("e.md",)
    assert changes.to_read == ("b.md", "e.md", "moved/c.md")
    assert set(changes.touched) == {"b.md", "e.md", "moved/c.md", "c.md", "d.md"}


def test_copy_is_an_addition_not_a_rename():
    changes = diff_manifests({"a.md": "1"}, {"a.md": "1", "copy.md": "1"})
    assert changes.added == ("copy.md",) and not changes.renamed


def test_two_files_swapping_content_are_modifications():
    changes = diff_manifests({"a.md": "1", "b.md": "2"}, {"a.md": "2", "b.md": "1"})
    assert changes.modified == ("a.md", "b.md")


def test_dirty_documents_from_an_interrupted_run_are_replanned():
    changes = diff_manifests({"a.md": "1", "b.md": "2"}, {"a.md": "1", "b.md": "2"}, dirty=["a.md", "gone.md"])
    assert changes.modified == ("a.md",)
    assert changes.unchanged == ("b.md",)
    assert changes.deleted == ("gone.md",)


def _chunk(doc: str, text: str, ordinal: int, start: int = 0) -> Chunk:
    h = text_hash(text)
    return Chunk(chunk_uuid(doc, h, 0), doc, text, h, ("Intro",), start, start + len(text), ordinal)


def _meta(c: Chunk) -> RowMeta:
    return RowMeta(c.chunk_id, c.doc_id, c.text_hash, c.heading, c.start, c.end, c.ordinal, "rev0")


def test_plan_rewrites_only_what_differs_and_deletes_stale_rows():
    kept, edited_old, gone = _chunk("a.md", "kept", 0), _chunk("a.md", "old", 1, 10), _chunk("a.md", "gone", 2, 20)
    existing = {c.chunk_id: _meta(c) for c in (kept, edited_old, gone)}
    edited_new = _chunk("a.md", "new", 1, 10)
    plan = plan_writes({"a.md": [kept, edited_new]}, existing, current_count=10)
    assert [c.chunk_id for c in plan.upserts] == [edited_new.chunk_id]
    assert set(plan.deletes) == {edited_old.chunk_id, gone.chunk_id}
    assert plan.expected_count == 10 + 1 - 2
    # "unchanged" counts every row left as it is: the 7 rows of untouched documents and a.md's kept chunk.
    assert plan.unchanged_chunks == 7 + 1


def test_a_plan_with_nothing_to_do_reports_every_row_unchanged():
    # The no-op summary used to say "chunks unchanged 0" over a collection of 49 documents' chunks.
    plan = plan_writes({}, {}, current_count=312)
    assert (plan.unchanged_chunks, plan.expected_count, plan.upserts, plan.deletes) == (312, 312, (), ())
    assert plan_writes({}, {}, current_count=0).unchanged_chunks == 0  # a new collection: nothing kept


def test_non_documents_are_split_off_the_manifest():
    manifest = {"a.md": "1", "img/logo.PNG": "2", "OWNERS": "3", "b.HTML": "4", "_index.yaml": "5"}
    documents, others = split_documents(manifest, (".md", ".html"))
    assert documents == {"a.md": "1", "b.HTML": "4"}
    assert others == ["OWNERS", "_index.yaml", "img/logo.PNG"]


def test_moved_offsets_rewrite_the_row_without_new_ids():
    before = _chunk("a.md", "same text", 1, start=10)
    after = _chunk("a.md", "same text", 1, start=42)
    plan = plan_writes({"a.md": [after]}, {before.chunk_id: _meta(before)}, current_count=1)
    assert before.chunk_id == after.chunk_id
    assert [c.start for c in plan.upserts] == [42]
    assert not plan.deletes and plan.expected_count == 1


def test_deleted_document_removes_all_its_rows():
    rows = [_chunk("a.md", t, i) for i, t in enumerate(["x", "y"])]
    plan = plan_writes({"a.md": []}, {c.chunk_id: _meta(c) for c in rows}, current_count=5)
    assert len(plan.deletes) == 2 and not plan.upserts and plan.expected_count == 3


def test_duplicate_paths_keep_the_first_in_sorted_order():
    assert duplicate_paths({"b.md": "1", "a.md": "1", "c.md": "2"}) == {"b.md": "a.md"}


def test_duplicate_of_an_indexed_page_never_evicts_it():
    manifest = {"a-copy.md": "1", "z/original.md": "1"}
    assert duplicate_paths(manifest, indexed=["z/original.md"]) == {"a-copy.md": "z/original.md"}
