"""The knowledge track end to end on the shipped sample corpus: real DVC, GX, LanceDB, embedding model, MLflow.

One project is re-indexed through a sequence of edits (no change, edit, rename, delete) and after each step
the published index must equal a from-scratch build of the same documents.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lorag.cli import app
from lorag.reindex.prepare import DeletionGuardTripped
from lorag.reindex.run import run_reindex
from lorag.validation.documents import ValidationFailed
from support.reindex import REPO, assert_same_index, copy_sample, params_of, published_rows

QUESTIONS = [json.loads(line) for line in (REPO / "sample" / "questions.jsonl").read_text().splitlines()]


@pytest.fixture
def cache_dir(shared_embedding_cache):
    """The session's embedding cache: from-scratch comparison builds reuse vectors instead of recomputing."""
    return shared_embedding_cache.parent


def _sample_project(make_project, cache_dir, name="project", **extra):
    overrides = {"embedding": {"cache_path": str(cache_dir / "cache.sqlite")}, "index": {"write_batch": 64}}
    for section, values in extra.items():
        overrides.setdefault(section, {}).update(values)
    root = make_project(overrides, docs={}, name=name)
    copy_sample(root)
    return root


def _from_scratch(make_project, cache_dir, source_root, name):
    """A fresh project holding a copy of `source_root`'s documents, fully built."""
    import shutil

    root = make_project({"embedding": {"cache_path": str(cache_dir / "cache.sqlite")}}, docs={}, name=name)
    shutil.rmtree(root / "data" / "docs")
    shutil.copytree(source_root / "data" / "docs", root / "data" / "docs")
    run_reindex(params_of(root))
    return published_rows(params_of(root))


def _cli_reindex(root, *args):
    result = CliRunner().invoke(app, ["reindex", "--params", str(root / "params.yaml"), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_incremental_runs_track_edits_renames_and_deletes(make_project, cache_dir):
    root = _sample_project(make_project, cache_dir)
    params = params_of(root)
    docs = root / "data" / "docs"

    s = _cli_reindex(root)
    assert s["mode"] == "full" and s["documents"]["added"] == 49 and s["documents"]["quarantined"] == 0
    total = s["chunks"]["chunks_expected"]
    assert total > 100 and s["chunks"]["chunks_upserted"] == total
    assert s["git_rev"] is not None  # the .dvc file was committed
    _assert_recorded_in_mlflow(params, s)

    second = _cli_reindex(root)
    assert second["mode"] == "incremental"
    assert second["documents"]["unchanged"] == 49
    assert second["embeddings"] == {"computed": 0, "reused": 0}
    assert second["chunks"]["chunks_upserted"] == 0 and second["chunks"]["chunks_deleted"] == 0

    page = docs / "hive-management" / "inspections.md"
    page.write_text(page.read_text() + "\n## Test addendum\n\nA fresh paragraph about lavender smoke trials.\n")
    edited = _cli_reindex(root)
    assert edited["documents"]["modified"] == 1 and edited["documents"]["unchanged"] == 48
    assert edited["embeddings"]["computed"] == 1  # only the new section's chunk is new text
    assert edited["chunks"]["chunks_upserted"] >= 1 and edited["chunks"]["chunks_expected"] == total + 1

    (docs / "health" / "varroa-treatment.md").rename(docs / "health" / "varroa-treatments-2024.md")
    renamed = _cli_reindex(root)
    assert renamed["documents"]["renamed"] == 1 and renamed["embeddings"]["computed"] == 0
    assert renamed["chunks"]["chunks_deleted"] == renamed["chunks"]["chunks_upserted"] > 0

    (docs / "reference" / "emergency-contacts.txt").unlink()
    deleted = _cli_reindex(root)
    assert deleted["documents"]["deleted"] == 1 and deleted["chunks"]["chunks_deleted"] >= 1
    assert deleted["chunks"]["chunks_upserted"] == 0

    assert_same_index(published_rows(params), _from_scratch(make_project, cache_dir, root, "scratch"))


def _assert_recorded_in_mlflow(params, summary):
    from mlflow.tracking import MlflowClient

    run = MlflowClient(params.tracking_uri).get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["lorag.data_rev"] == summary["data_rev"]
    assert run.data.tags["lorag.collection"] == summary["collection"]
    assert run.data.params["chunking.max_tokens"] == str(params.chunking.max_tokens)
    assert run.data.metrics["chunks_expected"] == summary["chunks"]["chunks_expected"]
    assert run.data.metrics["embeddings_computed"] == summary["embeddings"]["computed"]
    assert "seconds_embed" in run.data.metrics


def test_search_cli_answers_with_citations(make_project, cache_dir):
    root = _sample_project(make_project, cache_dir)
    run_reindex(params_of(root))
    runner = CliRunner()
    hits_in_gold, asked = 0, QUESTIONS[:20]
    for q in asked:
        result = runner.invoke(app, ["search", q["question"], "--params", str(root / "params.yaml"), "--json"])
        assert result.exit_code == 0, result.output
        hits = json.loads(result.stdout)
        assert len(hits) == 5 and all(h["citation"].startswith(h["doc_id"]) for h in hits)
        hits_in_gold += any(h["doc_id"] == q["doc_id"] for h in hits)
    # Retrieval quality is measured in bench/; here we only check that search is wired to the right index.
    assert hits_in_gold >= len(asked) // 2
    text = runner.invoke(app, ["search", "varroa mite treatment", "--params", str(root / "params.yaml")])
    assert text.exit_code == 0 and "[1]" in text.stdout and "score" in text.stdout
    status = runner.invoke(app, ["status", "--params", str(root / "params.yaml"), "--json"])
    assert status.exit_code == 0, status.output
    state = json.loads(status.stdout)
    table = runner.invoke(app, ["status", "--params", str(root / "params.yaml")])
    assert table.exit_code == 0 and state["collection"] in table.stdout.replace("\n", "").replace(" ", "")
    assert "data revision" in table.stdout and "pending" not in table.stdout
    assert state["collection"].startswith("lorag_docs_") and state["chunk_count"] > 100 and state["pending"] is None


def test_dry_run_plans_without_writing(make_project, cache_dir):
    root = _sample_project(make_project, cache_dir)
    params = params_of(root)
    run_reindex(params)
    before = published_rows(params)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout
    (root / "data" / "docs" / "harvest" / "extraction.md").unlink()
    (root / "data" / "docs" / "new.md").write_text("# New page\n\nBrand new text about drone congregation areas.\n")
    plan = run_reindex(params, dry_run=True).summary()
    assert plan["dry_run"] and plan["documents"]["added"] == 1 and plan["documents"]["deleted"] == 1
    assert plan["embeddings"]["computed"] == 1  # "to compute": the new page is not in the cache
    assert_same_index(published_rows(params), before)
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout == head


def test_bad_documents_are_quarantined_and_the_rest_indexed(make_project, cache_dir, tmp_path):
    root = _sample_project(make_project, cache_dir, validation={"max_failure_ratio": 0.5})
    docs = root / "data" / "docs"
    run_reindex(params_of(root))
    outside = tmp_path / "secret.md"
    outside.write_text("# Secret\n\nThis file is outside the docs root and must never be indexed.\n")
    (docs / "empty.md").write_text("")
    (docs / "binary.md").write_bytes(b"\x00\x01\x02PNG\x00" * 50)
    (docs / "bad-utf8.txt").write_bytes(b"caf\xe9 \xff\xfe\xfa\xfb" * 3 + bytes(range(128, 256)))
    (docs / "huge.md").write_text("# Huge\n\n" + "word " * 500_000)
    (docs / "copy-of-hive-types.md").write_bytes((docs / "hive-management" / "hive-types.md").read_bytes())
    (docs / "escape.md").symlink_to(outside)
    result = run_reindex(params_of(root))
    s = result.summary()
    rules = {q["doc_id"]: q["rule"] for q in s["quarantined"]}
    assert set(rules) == {"empty.md", "binary.md", "bad-utf8.txt", "huge.md", "copy-of-hive-types.md", "escape.md"}
    assert rules["copy-of-hive-types.md"] == "duplicate_content"
    indexed_docs = {row[0] for row in published_rows(params_of(root)).values()}
    assert len(indexed_docs) == 49 and not indexed_docs & set(rules)
    assert result.quarantine_dir is not None
    report = json.loads((Path(result.quarantine_dir) / "report.json").read_text())
    assert {f["doc_id"] for f in report["failures"]} == set(rules)
    assert (docs / "empty.md").exists(), "originals are never removed"


def test_too_many_bad_documents_fail_before_anything_is_written(make_project, cache_dir):
    root = _sample_project(make_project, cache_dir)
    params = params_of(root)
    run_reindex(params)
    before = published_rows(params)
    for i in range(20):
        (root / "data" / "docs" / f"blank-{i}.md").write_text(" ")
    with pytest.raises(ValidationFailed, match="max_failure_ratio"):
        run_reindex(params)
    assert published_rows(params).keys() == before.keys()


def test_modified_document_that_turns_bad_keeps_its_last_good_version(make_project, cache_dir):
    root = _sample_project(make_project, cache_dir)
    params = params_of(root)
    run_reindex(params)
    before = {k for k, v in published_rows(params).items() if v[0] == "harvest/extraction.md"}
    (root / "data" / "docs" / "harvest" / "extraction.md").write_bytes(b"\x00binary now\x00")
    s = run_reindex(params).summary()
    assert [q["doc_id"] for q in s["quarantined"]] == ["harvest/extraction.md"]
    after = {k for k, v in published_rows(params).items() if v[0] == "harvest/extraction.md"}
    assert after == before and before


def test_deletion_guard_stops_mass_deletes(make_project, cache_dir):
    root = _sample_project(make_project, cache_dir, index={"max_delete_ratio": 0.3})
    params = params_of(root)
    run_reindex(params)
    before = published_rows(params)
    for path in sorted((root / "data" / "docs").rglob("*"))[:40]:
        if path.is_file():
            path.unlink()
    with pytest.raises(DeletionGuardTripped, match="max_delete_ratio"):
        run_reindex(params)
    assert published_rows(params).keys() == before.keys()


def test_full_rebuild_swaps_alias_and_keeps_the_last_n(make_project, cache_dir):
    from lorag.index.stores import open_store

    root = _sample_project(make_project, cache_dir, index={"keep_last": 2})
    params = params_of(root)
    names = [run_reindex(params, full=True).prepared.collection for _ in range(3)]
    assert len(set(names)) == 3
    store = open_store(params)
    try:
        assert store.get_alias(params.index.name) == names[-1]
        assert sorted(store.list_collections()) == sorted(names[1:])
    finally:
        store.close()


def test_broken_params_fail_before_any_work(make_project):
    root = make_project()
    (root / "params.yaml").write_text("index:\n  backend: pinecone\nchunking:\n  max_tokenz: 3\n")
    result = CliRunner().invoke(app, ["reindex", "--params", str(root / "params.yaml")])
    assert result.exit_code == 2
    assert "index.backend" in result.output and "chunking.max_tokenz" in result.output
    assert "did you mean 'max_tokens'" in result.output
    assert not (root / ".lorag").exists() and not (root / ".dvc").exists()


def test_status_before_any_reindex_says_so_and_creates_nothing(make_project):
    root = make_project()
    result = CliRunner().invoke(app, ["status", "--params", str(root / "params.yaml")])
    assert result.exit_code == 1 and "run `lorag reindex`" in result.output
    assert not (root / ".lorag").exists()
