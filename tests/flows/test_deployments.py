"""The operating mode on real Prefect servers: deployments, schedules, event triggers, drift routing, concurrency.

Runs are only checked for creation here (no runner), except in the concurrency test, which runs a real runner
against the session server with a three-document project (a re-index of it takes seconds, nothing trains).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, DeploymentFilterName

from flows.deployments import OPERATED_REINDEX, OPERATED_RETRAIN, deploy, listing
from lorag.config import load_params
from lorag.events import project_slug, send_event

REPO = Path(__file__).resolve().parents[2]


def _api() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


def _runs_of(deployment_id: str) -> list:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def _wait_for_runs(deployment_id: str, n: int, timeout_s: float = 30.0) -> list:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = _runs_of(deployment_id)
        if len(runs) >= n:
            return runs
        time.sleep(0.5)
    return _runs_of(deployment_id)


def _ids(project: Path) -> dict[str, str]:
    return {row["deployment"].split("/")[0]: row["id"] for row in listing(project / "params.yaml")}


@pytest.fixture
def project(make_project, shared_embedding_cache):
    return make_project({"embedding": {"cache_path": str(shared_embedding_cache)},
                         "schedule": {"reindex_cron": "*/5 * * * *", "retrain_cron": "0 4 * * 2",
                                      "monitor_cron": "*/15 * * * *"},
                         "monitoring": {"window": 1, "required": 1, "permutations": 200}})


def test_deployments_have_their_schedules_triggers_and_policy_and_redeploy_adds_nothing(prefect_server, project):
    first = deploy(project / "params.yaml")
    second = deploy(project / "params.yaml")
    assert first == second  # updated in place, same ids
    rows = {r["deployment"].split("/")[0]: r for r in listing(project / "params.yaml")}
    name = project_slug(project)
    assert set(rows) == {OPERATED_REINDEX, OPERATED_RETRAIN, "lorag-monitor"}
    assert rows[OPERATED_REINDEX]["schedules"] == ["*/5 * * * *"]
    assert rows[OPERATED_RETRAIN]["schedules"] == ["0 4 * * 2"]
    assert rows["lorag-monitor"]["schedules"] == ["*/15 * * * *"]
    assert rows[OPERATED_REINDEX]["triggers"] == [f"{name}: docs changed", f"{name}: drift routes to re-index"]
    assert rows[OPERATED_RETRAIN]["triggers"] == [f"{name}: drift routes to retrain"]
    assert rows[OPERATED_REINDEX]["concurrency"] == "1 (ENQUEUE)" and rows["lorag-monitor"]["concurrency"] == "1 (CANCEL_NEW)"
    with get_client(sync_client=True) as client:
        named = client.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))
        owned = [a for d in named for a in client.read_resource_related_automations(f"prefect.deployment.{d.id}")]
    assert len(named) == 3 and len(owned) == 3  # no duplicate deployments or automations (PrefectHQ/prefect#17538)


def test_docs_changed_event_creates_one_reindex_run_for_this_project_only(prefect_server, project, make_project):
    other = make_project(name="other")
    deploy(project / "params.yaml")
    deploy(other / "params.yaml")
    ids, other_ids = _ids(project), _ids(other)
    send_event(_api(), "lorag.docs.changed", project, {"changed_at": "1700000000.5"})
    runs = _wait_for_runs(ids[OPERATED_REINDEX], 1)
    assert len(runs) == 1 and runs[0].parameters["reason"] == "docs changed"
    assert runs[0].parameters["changed_at"] == "1700000000.5"
    time.sleep(2)  # triggers act in ~1 s: give a wrong one the time to show
    assert _runs_of(other_ids[OPERATED_REINDEX]) == [] and _runs_of(ids[OPERATED_RETRAIN]) == []


def _write_log(project: Path, queries: list[str]) -> None:
    from lorag.drift.querylog import append
    from lorag.index.protocol import SearchHit

    params = load_params(project / "params.yaml")
    hit = SearchHit("gone-chunk", "x.md", "", "", 0, 0, 1.0, "rev")  # its chunk is not indexed: health not judged
    for q in queries:
        append(params, q, "hybrid", [hit], None)


ON = [f"how do I configure the {w} option of the index" for w in
      ("alpha", "top_k", "backend", "batch", "cache", "chunk", "overlap", "remote", "keep_last", "name",
       "threads", "suffix", "quarantine", "encoding", "model", "collection", "alias", "delete", "write", "path")]
OFF = [f"best {w} recipe for a family dinner" for w in
       ("pasta", "curry", "soup", "salad", "bread", "cake", "pie", "stew", "rice", "fish",
        "chicken", "tofu", "noodle", "pizza", "taco", "burger", "risotto", "omelette", "dumpling", "pudding")]


@pytest.fixture
def empty_docs_project(make_project, shared_embedding_cache):
    """Nothing to index (so docs_unindexed is 0): the only live signal is the query log."""
    return lambda name: make_project({"embedding": {"cache_path": str(shared_embedding_cache)},
                                      "monitoring": {"window": 1, "required": 1, "permutations": 200}},
                                     docs={}, name=name)


def test_drift_routed_to_retrain_creates_a_retrain_run_and_nothing_creates_none(prefect_server, empty_docs_project):
    from flows.monitor import monitor_flow

    drifted, quiet = empty_docs_project("drifted"), empty_docs_project("quiet")
    _write_log(drifted, ON + OFF)  # 20 on-topic, then a burst of 20 off-topic questions
    _write_log(quiet, ON + ON[::-1])
    for p in (drifted, quiet):
        deploy(p / "params.yaml")
    decided = monitor_flow(str(drifted / "params.yaml"))
    assert decided["action"] == "retrain", decided["rationale"]
    assert decided["signals"]["query_drift"]["p_value"] < 0.01 and decided["event_id"]
    runs = _wait_for_runs(_ids(drifted)[OPERATED_RETRAIN], 1)
    assert len(runs) == 1 and runs[0].parameters["reason"] == "drift"

    calm = monitor_flow(str(quiet / "params.yaml"))
    assert calm["action"] == "nothing" and "event_id" not in calm
    time.sleep(2)
    quiet_ids = _ids(quiet)
    assert _runs_of(quiet_ids[OPERATED_RETRAIN]) == [] and _runs_of(quiet_ids[OPERATED_REINDEX]) == []
    assert _runs_of(_ids(drifted)[OPERATED_REINDEX]) == []  # retrain only: the re-index deployment did not fire


@pytest.mark.slow
def test_two_triggers_together_never_run_alongside_and_collapse_to_the_newest(prefect_server, project):
    """A real runner (Prefect serve()) against the session server: two docs.changed events at once give two runs;
    the older one, finding the newer one due, ends as superseded; the newer one re-indexes; never both at once."""
    import os
    import signal

    env = {**os.environ, "PREFECT_API_URL": _api(), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    log = (project / "runner.log").open("wb")
    runner = subprocess.Popen([sys.executable, "-m", "flows.deployments", "serve", "--params",
                               str(project / "params.yaml")], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and OPERATED_REINDEX not in _ids(project):
            time.sleep(0.5)
        reindex_id = _ids(project)[OPERATED_REINDEX]
        for _ in range(2):
            send_event(_api(), "lorag.docs.changed", project, {"changed_at": str(time.time())})
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            runs = _runs_of(reindex_id)
            if len(runs) == 2 and all(r.state.is_final() for r in runs):
                break
            time.sleep(1)
        # A flow-run process ships its last logs as it exits, after its final state: stopping the runner (whose
        # process group holds it) before then loses them (it failed so in CI). Wait for them with the runner up.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("superseded by newer" in _logs(r.id) for r in runs):
            time.sleep(1)
    finally:
        os.killpg(runner.pid, signal.SIGINT)  # the runner we started, by its PID (own session)
        try:
            runner.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGKILL)
        log.close()
    runs = sorted(_runs_of(reindex_id), key=lambda r: r.expected_start_time)
    assert len(runs) == 2 and all(r.state.is_completed() for r in runs), (project / "runner.log").read_text()[-3000:]
    with get_client(sync_client=True) as client:
        first, second = sorted((client.read_flow_run(r.id) for r in runs), key=lambda r: r.start_time)
    assert first.end_time <= second.start_time  # never alongside, whichever the runner started first
    # Which run is "older" is decided by the flow (the due run it finds), not by expected_start_time, which two
    # events sent together may share: identify them by what they did.
    subflows = {r.id: _subflows(r.id) for r in runs}
    assert sorted(map(tuple, subflows.values())) == [(), ("COMPLETED",)]  # only one re-indexed (its subflow)
    older = next(r for r in runs if subflows[r.id] == [])
    assert "superseded by newer" in _logs(older.id)


def _subflows(flow_run_id) -> list[str]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
    return [r.state.type.value for r in runs]


def _logs(flow_run_id) -> str:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(entry.message for entry in logs)


@pytest.mark.slow
def test_lorag_serve_processes_register_and_the_scheduler_creates_runs(make_project, monkeypatch, tmp_path):
    """`lorag serve`'s processes on their own server (with the scheduler service, which the test harness lacks):
    the deployments appear, the cron schedule creates runs, re-deploying duplicates none, an edit becomes
    searchable through the watcher with no command typed, and all of them stop."""
    from lorag.operate import operated

    monkeypatch.setenv("PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS", "1")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    root = make_project({"schedule": {"reindex_cron": "* * * * *", "monitor_cron": None, "retrain_cron": None}})
    params = load_params(root / "params.yaml")
    with operated(params, root / "params.yaml", watch=True) as (api_url, children):
        env = {**__import__("os").environ, "PREFECT_API_URL": api_url}

        def rows() -> list[dict]:
            out = subprocess.run([sys.executable, "-m", "flows.deployments", "list", "--params",
                                  str(root / "params.yaml")], cwd=REPO, env=env, capture_output=True, text=True)
            assert out.returncode == 0, out.stderr[-2000:]
            return json.loads(out.stdout)

        deadline = time.monotonic() + 120
        listed: list[dict] = []
        while time.monotonic() < deadline:
            listed = rows()
            if any(r["next_run"] for r in listed):
                break
            time.sleep(1)
        reindex = next(r for r in listed if r["deployment"].startswith(OPERATED_REINDEX))
        assert reindex["next_run"] and reindex["schedules"] == ["* * * * *"]
        subprocess.run([sys.executable, "-m", "flows.deployments", "deploy", "--params", str(root / "params.yaml")],
                       cwd=REPO, env=env, check=True, capture_output=True)
        time.sleep(3)  # a few scheduler loops after the re-deploy
        starts = _scheduled_starts(api_url, reindex["id"])
        assert starts and len(starts) == len(set(starts))  # one run per slot, none duplicated by re-deploying

        # no command typed: an edit is re-indexed by serve's watcher, and its latency recorded
        (params.corpus.docs_dir / "intro.md").write_text("# Intro\n\nThe index follows every edit, quietly.\n")
        slo = _wait_for_slo(params, timeout_s=240)
        assert slo is not None, (params.root / ".lorag/prefect/watch.log").read_text()[-3000:]
        assert slo.data.tags["lorag.mode"] == "serve-watch" and slo.data.metrics["change_to_searchable_s"] > 0
    assert all(c.proc.poll() is not None for c in children)  # watcher, runner and server all stopped


def _wait_for_slo(params, timeout_s: float):
    """The watcher's SLO run, read once its log reports the change (opening the MLflow SQLite store while another
    process creates it races on MLflow's table creation)."""
    import mlflow

    log = params.root / ".lorag" / "prefect" / "watch.log"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.is_file() and "change_to_searchable_s" in log.read_text(errors="replace"):
            client = mlflow.MlflowClient(params.tracking_uri)
            exp = client.get_experiment_by_name(params.mlflow.reindex_experiment)
            runs = client.search_runs([exp.experiment_id], "tags.`lorag.slo` = 'change_to_searchable'")
            return runs[0] if runs else None
        time.sleep(1)
    return None


def _scheduled_starts(api_url: str, deployment_id: str) -> list[str]:
    import urllib.request

    body = json.dumps({"deployments": {"id": {"any_": [deployment_id]}},
                       "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}}).encode()
    req = urllib.request.Request(api_url + "/flow_runs/filter", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return [r["expected_start_time"] for r in json.loads(resp.read())]
