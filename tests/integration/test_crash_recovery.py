"""Kill a real `lorag reindex` process mid-write (SIGKILL), then re-run.

The published index must serve everything it served before while the run is dead, and the re-run must
converge on exactly a from-scratch index of the same documents: no lost, duplicate or stale chunks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from lorag.faults import PAUSE_ENV
from lorag.index.stores import published_state
from lorag.reindex.run import run_reindex
from support.reindex import assert_same_index, copy_sample, params_of, published_rows


EDITED = {
    "hive-management/swarm-control.md",
    "health/foulbrood.md",
    "harvest/honey-harvesting.md",
    "reference/emergency-contacts.txt",
    "biology/bee-biology.md",
}


def _edit_corpus(docs):
    """A change set with upserts (edits, an addition, a rename) and deletions, spanning several write batches."""
    for rel in ("hive-management/swarm-control.md", "health/foulbrood.md", "harvest/honey-harvesting.md"):
        page = docs / rel
        page.write_text(page.read_text().replace("the", "that", 10) + "\n## Crash test\n\nNew closing words.\n")
    (docs / "reference" / "emergency-contacts.txt").unlink()
    (docs / "biology" / "bee-biology.md").rename(docs / "biology" / "honey-bee-biology.md")
    (docs / "added.md").write_text("# Added\n\nA page added between the runs, about bee bread and pollen.\n")


def _run_until_paused(root, point, marker, full):
    env = {**os.environ, PAUSE_ENV: f"{point}@{marker}"}
    cmd = [sys.executable, "-m", "lorag.cli", "reindex", "--params", str(root / "params.yaml")]
    proc = subprocess.Popen(cmd + (["--full"] if full else []), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while not marker.exists():
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace")
            pytest.fail(f"re-index exited ({proc.returncode}) before reaching {point}:\n{out[-3000:]}")
        assert time.monotonic() < deadline, f"re-index never reached {point}"
        time.sleep(0.2)
    proc.kill()  # SIGKILL: no cleanup handlers run
    proc.wait()
    assert proc.returncode == -9


@pytest.mark.parametrize(
    ("full", "point"),
    [(False, "upsert:2"), (False, "delete:1"), (False, "publish:1"), (True, "upsert:2"), (True, "publish:1")],
)
def test_killed_reindex_keeps_published_index_and_rerun_converges(
    make_project, shared_embedding_cache, tmp_path, full, point
):
    overrides = {"index": {"write_batch": 8}, "embedding": {"cache_path": str(shared_embedding_cache)}}
    root = make_project(overrides, docs={})
    copy_sample(root)
    params = params_of(root)
    run_reindex(params)
    before = published_rows(params)
    _edit_corpus(root / "data" / "docs")

    _run_until_paused(root, point, tmp_path / "paused", full)

    during = published_rows(params)
    if full:
        assert during.keys() == before.keys(), "a killed --full build must not touch the published collection"
    elif point.startswith("upsert"):
        assert before.keys() <= during.keys(), "deletes come last: nothing published may be missing yet"
    else:
        untouched = {cid for cid, row in before.items() if row[0] not in EDITED}
        assert untouched <= during.keys(), "chunks of documents the run did not touch must all be there"

    run_reindex(params)
    scratch = make_project({"embedding": {"cache_path": str(shared_embedding_cache)}}, docs={}, name="scratch")
    shutil.rmtree(scratch / "data" / "docs")
    shutil.copytree(root / "data" / "docs", scratch / "data" / "docs")
    run_reindex(params_of(scratch))
    assert_same_index(published_rows(params), published_rows(params_of(scratch)))


def _reindex_runs(params):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(params.tracking_uri)
    experiment = client.get_experiment_by_name(params.mlflow.reindex_experiment)
    return {r.info.run_id: r for r in client.search_runs([experiment.experiment_id])}


@pytest.mark.slow
@pytest.mark.parametrize(("point", "closed_as"), [("upsert:2", "KILLED"), ("record:1", "FINISHED")])
def test_killed_reindex_leaves_no_running_mlflow_run_after_the_next_one(
    make_project, shared_embedding_cache, tmp_path, point, closed_as
):
    """The MLflow history matches what was served: a run killed before publishing is closed KILLED, one killed
    after publishing (while recording) is closed FINISHED with the published facts."""
    overrides = {"index": {"write_batch": 8}, "embedding": {"cache_path": str(shared_embedding_cache)}}
    root = make_project(overrides, docs={})
    copy_sample(root)
    params = params_of(root)
    run_reindex(params)
    _edit_corpus(root / "data" / "docs")
    _run_until_paused(root, point, tmp_path / "paused", full=False)

    killed = [r for r in _reindex_runs(params).values() if r.info.status == "RUNNING"]
    assert len(killed) == 1, "the killed run is left RUNNING until someone closes it"
    published = published_state(params)
    rerun = run_reindex(params)

    runs = _reindex_runs(params)
    assert not [r for r in runs.values() if r.info.status == "RUNNING"]
    closed = runs[killed[0].info.run_id]
    assert closed.info.status == closed_as
    if closed_as == "FINISHED":
        assert closed.data.tags["lorag.data_rev"] == published["data_rev"] and "lorag.recovered" in closed.data.tags
        assert rerun.prepared.plan.counts()["chunks_upserted"] == 0  # it had published: nothing left to do
    else:
        assert "before publishing" in closed.data.tags["lorag.error"]
    assert runs[rerun.run_id].info.status == "FINISHED"
