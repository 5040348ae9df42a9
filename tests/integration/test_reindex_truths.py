"""What a re-index tells the user is true: the dry run's revision, the deletion guard in every mode, no side
effects from a run that was refused, a search that asks for zero results, and an MLflow run that spans its work."""

from __future__ import annotations

import subprocess

import pytest
from typer.testing import CliRunner

from lorag.cli import app
from lorag.reindex.prepare import DeletionGuardTripped
from lorag.reindex.run import run_reindex
from support.reindex import copy_sample, params_of, published_rows


@pytest.fixture
def project(make_project, shared_embedding_cache):
    root = make_project({"embedding": {"cache_path": str(shared_embedding_cache)}, "index": {"max_delete_ratio": 0.3}},
                        docs={})
    copy_sample(root)
    return root


def _head(root):
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout


def test_dry_run_prints_the_revision_the_real_run_records(project):
    params = params_of(project)
    planned = run_reindex(params, dry_run=True).summary()
    real = run_reindex(params).summary()
    assert planned["data_rev"] == real["data_rev"]
    (project / "data" / "docs" / "new.md").write_text("# New\n\nA page about winter clustering of the colony.\n")
    assert run_reindex(params, dry_run=True).summary()["data_rev"] == run_reindex(params).summary()["data_rev"]


@pytest.mark.parametrize("full", [False, True])
def test_deletion_guard_holds_in_every_mode_and_leaves_no_snapshot(project, full):
    params = params_of(project)
    run_reindex(params)
    before, head = published_rows(params), _head(project)
    dvc_file = (project / "data" / "docs.dvc").read_text()
    for path in sorted(p for p in (project / "data" / "docs").rglob("*.md"))[:35]:
        path.unlink()

    plan = run_reindex(params, full=full, dry_run=True).summary()  # the dry run shows the plan that would trip
    assert "max_delete_ratio" in plan["deletion_guard"] and "--accept-deletions" in plan["deletion_guard"]
    with pytest.raises(DeletionGuardTripped, match="--accept-deletions"):
        run_reindex(params, full=full)
    assert published_rows(params).keys() == before.keys()
    assert _head(project) == head and (project / "data" / "docs.dvc").read_text() == dvc_file  # nothing versioned

    accepted = run_reindex(params, full=full, accept_deletions=True).summary()
    assert accepted["chunks"]["chunks_expected"] < len(before) and _head(project) != head


def test_guard_override_is_documented_in_help():
    out = CliRunner().invoke(app, ["reindex", "--help"]).stdout
    assert "--accept-deletions" in out and "max_delete_ratio" in out


def test_missing_docs_folder_creates_nothing(make_project):
    root = make_project(docs={})
    (root / "data" / "docs").rmdir()
    result = CliRunner().invoke(app, ["reindex", "--params", str(root / "params.yaml")])
    assert result.exit_code == 1 and "corpus.docs_dir" in result.output
    assert not (root / ".lorag").exists()


def test_search_for_zero_results_is_an_error_not_the_default(project):
    run_reindex(params_of(project))
    result = CliRunner().invoke(app, ["search", "varroa", "--params", str(project / "params.yaml"), "-k", "0"])
    assert result.exit_code != 0 and "top-k" in result.output.lower().replace("_", "-")
    from lorag.retrieval.search import search

    with pytest.raises(ValueError, match="top_k"):
        search(params_of(project), "varroa", top_k=0)


def test_mlflow_run_spans_the_work_it_records(project):
    from mlflow.tracking import MlflowClient

    params = params_of(project)
    result = run_reindex(params)
    run = MlflowClient(params.tracking_uri).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    span = (run.info.end_time - run.info.start_time) / 1000
    assert span >= result.seconds["total"] > 0
    assert run.data.metrics["seconds_snapshot"] > 0 and run.data.metrics["verified_rows_checked"] > 100


def test_search_from_a_new_process_prints_no_library_noise(project):
    import sys

    run_reindex(params_of(project))
    cmd = [sys.executable, "-m", "lorag.cli", "search", "varroa", "--params", str(project / "params.yaml"), "-k", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "[1]" in proc.stdout
    for noise in ("Loading weights", "Warning", "temporary directory"):
        assert noise not in proc.stderr, proc.stderr


def test_docs_folder_tracked_by_git_gets_one_line_with_both_fixes(make_project):
    """A common real layout: the documents are already in git. DVC refuses to version them; the user gets the
    two ways out, not a traceback, and the published index (none yet) and the documents are untouched."""
    from support.project import git

    root = make_project()
    git(root, "add", "data/docs")
    git(root, "commit", "-q", "-m", "docs in git")
    result = CliRunner().invoke(app, ["reindex", "--params", str(root / "params.yaml")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "git rm -r --cached data/docs" in result.output and "versioning.enabled=false" in result.output
    ok = CliRunner().invoke(app, ["reindex", "--params", str(root / "params.yaml"), "--set", "versioning.enabled=false"])
    assert ok.exit_code == 0, ok.output
