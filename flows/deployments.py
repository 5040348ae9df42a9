"""Every lorag deployment, declared once: schedules, event triggers and the concurrency policy, from params.yaml.

    lorag-reindex-operated/<project>   cron schedule.reindex_cron; event triggers.docs_changed (lorag watch);
                                       event triggers.drift_detected with lorag.action in (reindex, both)
    lorag-retrain-operated/<project>   cron schedule.retrain_cron; event triggers.drift_detected with
                                       lorag.action in (retrain, both)
    lorag-monitor/<project>            cron schedule.monitor_cron

Concurrency policy (stated, and tested in tests/flows/test_deployments.py):
  - re-index and retrain QUEUE: each deployment has concurrency_limit 1 with ENQUEUE, so a trigger that arrives
    while the same track runs waits (state AwaitingConcurrencySlot) and never runs alongside; the global limits
    inside the flows (lorag-reindex, lorag-retrain) also keep a manual run from overlapping a deployed one.
  - queued and late runs COLLAPSE to the newest: an operated run that starts while a newer run of its deployment
    is due (scheduled or pending, expected before now), running or done ends at once as superseded. After an outage or a
    burst only the newest runs, and it reads the documents as they are then, so nothing is lost.
  - the monitor DROPS: concurrency_limit 1 with CANCEL_NEW; a check that finds one running is cancelled (the
    running one already reads the newest data).
Re-deploying is idempotent: a deployment is keyed by flow name + project name and updated in place, and Prefect
deletes the automations a deployment owns before re-creating its triggers (RunnerDeployment._create_triggers),
so deploying twice leaves one deployment, one automation per trigger and one scheduled run per slot.

Run:  python -m flows.deployments serve|deploy|list [--params params.yaml]   (lorag serve / lorag schedule call it)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import lorag  # noqa: F401  (first: sets the telemetry-off / offline environment before Prefect reads it)
from prefect import flow, get_run_logger

from flows.monitor import monitor_flow
from flows.reindex import reindex_flow
from flows.retrain import retrain_flow
from lorag.config import Params, load_params
from lorag.events import project_resource, project_slug

OPERATED_REINDEX = "lorag-reindex-operated"
OPERATED_RETRAIN = "lorag-retrain-operated"


def newer_run_due() -> str | None:
    """The id of a newer run of this run's deployment that is due, running or done, or None (also outside a
    deployment). A newer run that already started read the data after this run was asked for: it answers both."""
    from datetime import datetime, timezone

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterId, FlowRunFilter,
                                                FlowRunFilterExpectedStartTime, FlowRunFilterState,
                                                FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType
    from prefect.context import get_run_context

    this = get_run_context().flow_run
    if this.deployment_id is None:
        return None
    due = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(
            any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.COMPLETED])),
        expected_start_time=FlowRunFilterExpectedStartTime(before_=datetime.now(timezone.utc)),
    )
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=due,
                                     deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[this.deployment_id])))
    mine = this.expected_start_time
    newer = [r for r in runs if r.id != this.id and (r.expected_start_time, str(r.id)) > (mine, str(this.id))]
    return str(newer[0].id) if newer else None


def _superseded(track: str) -> dict[str, Any] | None:
    newer = newer_run_due()
    if newer is None:
        return None
    get_run_logger().info("superseded by newer %s run %s, which will read the newest data", track, newer)
    return {"superseded_by": newer}


@flow(name=OPERATED_REINDEX, log_prints=True)
def operated_reindex(params_path: str, reason: str = "schedule", changed_at: str | None = None) -> dict:
    """A deployed re-index: collapse to the newest due run, then the re-index flow; record change latency."""
    skipped = _superseded("re-index")
    if skipped is not None:
        return skipped
    summary = reindex_flow(params_path)
    if changed_at not in (None, ""):
        from lorag.tracking.slo import record_change_latency

        # The alias is switched when the flow returns and search reads it per query: searchable from now.
        latency = time.time() - float(changed_at)
        record_change_latency(load_params(params_path), latency, mode="deployment",
                              data_rev=(summary.get("data_rev") or ""))
        summary["change_to_searchable_s"] = latency
    return {**summary, "trigger": reason}


@flow(name=OPERATED_RETRAIN, log_prints=True)
def operated_retrain(params_path: str, reason: str = "schedule", overrides: list[str] | None = None) -> dict:
    """A deployed retrain: collapse to the newest due run, then the retrain flow up to the gate decision.

    It does not pause for the reviewer: the deployment's concurrency slot would be held for up to
    promotion.approval_timeout_s and every later trigger would queue behind a person. The gated challenger waits
    in the registry; `lorag review` / `lorag approve` decide it from a terminal.
    """
    skipped = _superseded("retrain")
    if skipped is not None:
        return skipped
    return {**retrain_flow(params_path, overrides or [], wait_for_review=False), "trigger": reason}


def build_deployments(params_path: str | Path, retrain_overrides: list[str] | None = None) -> list[Any]:
    """The three RunnerDeployments of one project, named after it, parameters and schedules from params."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.events import DeploymentEventTrigger
    from prefect.schedules import Cron

    path = str(Path(params_path).resolve())
    params = load_params(path)
    name, resource, t = project_slug(params.root), project_resource(params.root), params.triggers

    def cron(expr: str | None) -> list[Any]:
        return [Cron(expr, timezone=params.schedule.timezone)] if expr else []

    def on(event: str, extra: dict[str, Any], parameters: dict[str, Any], label: str) -> Any:
        return DeploymentEventTrigger(name=f"{name}: {label}", expect={event},
                                      match={"prefect.resource.id": resource, **extra}, parameters=parameters)

    queue = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)
    drop = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)
    base = {"params_path": path}
    retrain_base = {**base, "overrides": list(retrain_overrides or [])}
    return [
        operated_reindex.to_deployment(
            name, parameters={**base, "reason": "schedule"}, schedules=cron(params.schedule.reindex_cron),
            concurrency_limit=queue, tags=["lorag", "knowledge"],
            triggers=[on(t.docs_changed, {}, {**base, "reason": "docs changed",
                                              "changed_at": "{{ event.payload.changed_at }}"}, "docs changed"),
                      on(t.drift_detected, {"lorag.action": ["reindex", "both"]}, {**base, "reason": "drift"},
                         "drift routes to re-index")]),
        operated_retrain.to_deployment(
            name, parameters={**retrain_base, "reason": "schedule"}, schedules=cron(params.schedule.retrain_cron),
            concurrency_limit=queue, tags=["lorag", "behavior"],
            triggers=[on(t.drift_detected, {"lorag.action": ["retrain", "both"]}, {**retrain_base, "reason": "drift"},
                         "drift routes to retrain")]),
        monitor_flow.to_deployment(name, parameters={"params_path": path}, schedules=cron(params.schedule.monitor_cron),
                                   concurrency_limit=drop, tags=["lorag", "monitor"]),
    ]


def deploy(params_path: str | Path, retrain_overrides: list[str] | None = None, work_pool: str | None = None,
           image: str | None = None) -> list[str]:
    """Register (create or update) the deployments without running them; returns their ids. With `work_pool`
    (e.g. the Kubernetes pool of infra/kubernetes) a worker of that pool runs them in `image`, not serve()."""
    return [str(d.apply(work_pool_name=work_pool, image=image)) for d in build_deployments(params_path, retrain_overrides)]


def listing(params_path: str | Path) -> list[dict[str, Any]]:
    """What is deployed for this project and when each runs next."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterName, FlowRunFilter,
                                                FlowRunFilterState, FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    name = project_slug(load_params(str(Path(params_path).resolve())).root)
    rows = []
    with get_client(sync_client=True) as client:
        for d in client.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name]))):
            flow_name = client.read_flow(d.flow_id).name
            upcoming = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id={"any_": [d.id]}), sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))),
                limit=1)
            automations = client.read_resource_related_automations(f"prefect.deployment.{d.id}")
            rows.append({"deployment": f"{flow_name}/{d.name}", "id": str(d.id),
                         "schedules": [getattr(s.schedule, "cron", str(s.schedule)) for s in d.schedules],
                         "triggers": [a.name for a in automations],
                         "concurrency": _concurrency(d),
                         "next_run": upcoming[0].expected_start_time.isoformat() if upcoming else None,
                         "paused": bool(d.paused)})
    return sorted(rows, key=lambda r: r["deployment"])


def _concurrency(d: Any) -> str:
    opts = getattr(d, "concurrency_options", None)
    limit = getattr(d, "global_concurrency_limit", None)
    strategy = getattr(opts, "collision_strategy", None)
    return f"{getattr(limit, 'limit', '?')} ({getattr(strategy, 'value', strategy) or 'ENQUEUE'})" if limit else "none"


def serve_all(params_path: str | Path, retrain_overrides: list[str] | None = None) -> None:
    """Register the deployments and run their flows in this process until interrupted (Prefect's serve())."""
    from prefect import serve

    serve(*build_deployments(params_path, retrain_overrides), print_starting_message=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="lorag deployments: serve, deploy or list them.")
    parser.add_argument("command", choices=["serve", "deploy", "list"])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--retrain-set", dest="retrain_overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a param for deployed retrains only (e.g. train.max_steps=20)")
    parser.add_argument("--work-pool", default=None, help="deploy: to this work pool (infra/kubernetes) instead of serve()")
    parser.add_argument("--image", default=None, help="deploy: the container image the work pool's jobs run")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve_all(args.params, args.retrain_overrides)
    elif args.command == "deploy":
        print(json.dumps(deploy(args.params, args.retrain_overrides, args.work_pool, args.image)))
    else:
        print(json.dumps(listing(args.params), indent=2, default=str))


if __name__ == "__main__":
    main()
