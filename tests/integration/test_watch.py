"""`lorag watch`: a burst of 50 file writes becomes one change, then one re-index (in-process, or one event that
creates one re-index run of the deployment), with the change-to-searchable latency measured and recorded."""

from __future__ import annotations

import threading
import time

import mlflow

from lorag.config import load_params
from lorag.watch import ChangeBatch, announce, reindex_here, run_watch


def _burst(docs, n: int = 50) -> None:
    for i in range(n):  # an editor or a `git pull`: many writes a few ms apart
        (docs / f"burst/page-{i:02d}.md").parent.mkdir(exist_ok=True)
        (docs / f"burst/page-{i:02d}.md").write_text(f"# Page {i}\n\nBurst page number {i} about zebra{i} crossings.\n")
        time.sleep(0.004)


def _watch(params, handle, settle_s: float = 3.0):
    """Run the watcher in a thread around a burst; stop it once it handled a batch and stayed quiet after."""
    stop, seen, results = threading.Event(), [], []

    def counted(batch: ChangeBatch) -> dict:
        seen.append(batch)
        return handle(batch)

    thread = threading.Thread(target=run_watch, args=(params, counted, stop, results.append), daemon=True)
    thread.start()
    time.sleep(1.0)  # the watcher is up before the burst starts
    _burst(params.corpus.docs_dir)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not results:
        time.sleep(0.1)
    time.sleep(settle_s)  # any second batch from the same burst would show up here
    stop.set()
    thread.join(10)
    return seen, results


def test_burst_of_50_writes_is_one_in_process_reindex_with_latency_recorded(make_project, shared_embedding_cache):
    root = make_project({"embedding": {"cache_path": str(shared_embedding_cache)}})
    params = load_params(root / "params.yaml")
    seen, results = _watch(params, reindex_here(params))
    assert len(seen) == 1 and len(seen[0].paths) == 50
    assert len(results) == 1 and results[0]["change_to_searchable_s"] > 0
    from lorag.retrieval.search import search

    hits = search(params, "zebra17 crossings", top_k=3, mode="fulltext")
    assert hits and hits[0].doc_id == "burst/page-17.md"
    client = mlflow.MlflowClient(params.tracking_uri)
    exp = client.get_experiment_by_name(params.mlflow.reindex_experiment)
    slo = client.search_runs([exp.experiment_id], "tags.`lorag.slo` = 'change_to_searchable'")
    assert len(slo) == 1 and slo[0].data.metrics["change_to_searchable_s"] == results[0]["change_to_searchable_s"]
    assert slo[0].data.tags["lorag.data_rev"] == results[0]["data_rev"] and results[0]["data_rev"]


def test_burst_of_50_writes_is_one_event_and_one_reindex_run(prefect_server, make_project):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL

    from flows.deployments import OPERATED_REINDEX, deploy, listing

    root = make_project()
    deploy(root / "params.yaml")
    reindex_id = next(r["id"] for r in listing(root / "params.yaml") if r["deployment"].startswith(OPERATED_REINDEX))
    params = load_params(root / "params.yaml")
    seen, results = _watch(params, announce(params, str(PREFECT_API_URL.value())))
    assert len(seen) == 1 and len(results) == 1 and results[0]["files"] == 50 and results[0]["event_id"]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[reindex_id])))
    assert len(runs) == 1 and runs[0].parameters["reason"] == "docs changed"


def test_an_event_to_a_server_that_is_down_is_an_error_not_a_silent_drop(make_project):
    """Prefect's emit_event drops events when the server is down and exits 0; lorag's delivery must fail loudly,
    and `lorag watch` refuses to start without a server it can name."""
    import pytest
    from typer.testing import CliRunner

    from lorag.cli import app
    from lorag.events import EventNotDelivered, send_event
    from lorag.operate import free_port

    root = make_project()
    down = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    with pytest.raises(EventNotDelivered, match="not delivered .* after 2 tries"):
        send_event(down, "lorag.docs.changed", root, {"changed_at": "1"}, retries=1, backoff_s=0.01)
    result = CliRunner().invoke(app, ["watch", "--params", str(root / "params.yaml")], env={"PREFECT_API_URL": ""})
    assert result.exit_code == 1 and "lorag serve" in result.output
