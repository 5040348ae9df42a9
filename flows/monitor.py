"""Drift monitoring as a Prefect flow: one check (signals -> route -> MLflow record), then the event the
deployments trigger on when the decision names a track.

Wiring only: lorag.drift.monitor.check does the work; the event goes out through lorag.events, which confirms
delivery (Prefect's emit_event drops events silently when the server is down). The event carries the action as
a resource label (`lorag.action`: reindex / retrain / both), which the re-index and retrain deployments match.

Run it:  python -m flows.monitor [--params params.yaml] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json

import lorag  # noqa: F401  (first: sets the telemetry-off / offline environment before Prefect reads it)
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import io_error
from lorag.config import Params, load_params


@task(cache_policy=NO_CACHE)
def check_drift(params: Params) -> dict:
    from lorag.drift.monitor import check
    from lorag.tracking.monitor import decision_json

    result = check(params, record=True)
    return {**json.loads(decision_json(result.signals, result.decision)), "mlflow_run_id": result.run_id}


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=io_error, cache_policy=NO_CACHE)
def emit_decision(params: Params, decision: dict) -> str:
    from prefect.settings import PREFECT_API_URL

    from lorag.events import send_event

    payload = {"action": decision["action"], "rationale": decision["rationale"],
               "mlflow_run_id": decision["mlflow_run_id"]}
    return send_event(str(PREFECT_API_URL.value()), params.triggers.drift_detected, params.root, payload,
                      labels={"lorag.action": decision["action"]}, retries=params.triggers.delivery_retries)


@flow(name="lorag-monitor", log_prints=True)
def monitor_flow(params_path: str = "params.yaml", overrides: list[str] | None = None) -> dict:
    """Check drift; when the decision names a track, emit `triggers.drift_detected` for the deployments."""
    params = load_params(params_path, overrides or [])
    decision = check_drift(params)
    if decision["action"] != "nothing":
        decision["event_id"] = emit_decision(params, decision)
    get_run_logger().info("drift decision: %s (%s)", decision["action"], " | ".join(decision["rationale"]))
    return decision


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run one lorag drift check under Prefect.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    print(json.dumps(monitor_flow(args.params, args.overrides), indent=2, default=str))


if __name__ == "__main__":
    main()
