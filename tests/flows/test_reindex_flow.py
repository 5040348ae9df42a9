"""The re-index flow on a real Prefect server: every step runs as a task, the lock and limit hold."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.reindex import REINDEX_LIMIT, reindex_flow
from lorag.reindex.run import ReindexBusy, reindex_lock, run_reindex
from support.reindex import assert_same_index, copy_sample, params_of, published_rows

STEPS = {"scan", "plan", "quarantine", "snapshot", "embed", "write", "verify", "publish", "record"}


@pytest.fixture
def project(make_project, shared_embedding_cache):
    root = make_project({"embedding": {"cache_path": str(shared_embedding_cache)}}, docs={})
    copy_sample(root)
    return root


def _task_states(flow_run_id) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name.rsplit("-", 1)[0]: r.state.type.value for r in runs}


def test_flow_runs_each_step_as_a_task_and_second_run_embeds_nothing(prefect_server, project):
    params_file = str(project / "params.yaml")
    state = reindex_flow(params_file, return_state=True)
    assert state.is_completed(), state.message
    first = state.result()
    assert first["mode"] == "full" and first["chunks"]["chunks_expected"] > 100
    states = _task_states(state.state_details.flow_run_id)
    assert STEPS <= states.keys() and set(states[s] for s in STEPS) == {"COMPLETED"}

    second = reindex_flow(params_file)
    assert second["mode"] == "incremental"
    assert second["embeddings"]["computed"] == 0 and second["chunks"]["chunks_upserted"] == 0
    assert second["mlflow_run_id"]

    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(REINDEX_LIMIT)
    assert limit.limit == 1


def test_flow_refuses_to_overlap_a_running_reindex(prefect_server, project):
    with reindex_lock(params_of(project)):
        state = reindex_flow(str(project / "params.yaml"), return_state=True)
    assert state.is_failed()
    with pytest.raises(ReindexBusy):
        state.result()


def test_dry_run_flow_writes_nothing(prefect_server, project):
    summary = reindex_flow(str(project / "params.yaml"), dry_run=True)
    assert summary["dry_run"] and summary["documents"]["added"] == 49
    assert not (project / ".lorag" / "index").exists() or not any((project / ".lorag" / "index").iterdir())


def test_flow_and_library_produce_the_same_reindex(prefect_server, make_project, shared_embedding_cache, project):
    """The recipe exists once: the flow (steps as tasks) and the library call give the same result."""
    twin = make_project({"embedding": {"cache_path": str(shared_embedding_cache)}}, docs={}, name="twin")
    copy_sample(twin)
    by_flow = reindex_flow(str(project / "params.yaml"))
    by_library = run_reindex(params_of(twin)).summary()
    volatile = {"collection", "seconds", "mlflow_run_id", "git_rev", "quarantine_dir", "verified"}
    assert {k: v for k, v in by_flow.items() if k not in volatile} == {
        k: v for k, v in by_library.items() if k not in volatile
    }
    assert by_flow["seconds"].keys() == by_library["seconds"].keys()
    assert by_flow["verified"]["rows_checked"] == by_library["verified"]["rows_checked"]
    assert_same_index(published_rows(params_of(project)), published_rows(params_of(twin)))
