"""Find the retrain flow run paused for a version's review and resume it, over Prefect's REST API.

The library never imports Prefect; the flow tags the version with its run id (`lorag.review.flow_run_id`) before it
pauses, and `lorag approve` / `lorag reject` resume that run with the same input the UI form would send
({decision, reviewer, reason, override}) when PREFECT_API_URL points at its server.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params

TAG_FLOW_RUN = "lorag.review.flow_run_id"


def mark_waiting(params: Params, version: str, flow_run_id: str) -> None:
    """Called by the flow just before it pauses: says which run waits for this version's review."""
    from lorag.tracking.registry import registry_client

    registry_client(params).set_model_version_tag(params.mlflow.registered_model, str(version), TAG_FLOW_RUN,
                                                  str(flow_run_id))


def _api() -> str | None:
    url = os.environ.get("PREFECT_API_URL")
    return url.rstrip("/") if url else None


def paused_run(params: Params, version: str) -> str | None:
    """The id of the flow run paused for `version`'s review, or None (no server configured, no run, not paused)."""
    import httpx

    from lorag.tracking.registry import registry_client

    api = _api()
    if api is None:
        return None
    tags = registry_client(params).get_model_version(params.mlflow.registered_model, str(version)).tags or {}
    run_id = tags.get(TAG_FLOW_RUN)
    if not run_id:
        return None
    response = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    state = (response.json().get("state") or {}).get("type")
    return run_id if state == "PAUSED" else None


def resume(run_id: str, run_input: dict[str, Any]) -> str:
    """Resume a paused run with `run_input`; returns Prefect's status (ACCEPT). Raises when refused."""
    import httpx

    api = _api()
    if api is None:
        raise RuntimeError("PREFECT_API_URL is not set: no flow run to resume")
    response = httpx.post(f"{api}/flow_runs/{run_id}/resume", json={"run_input": run_input}, timeout=30)
    response.raise_for_status()
    body = response.json()
    if body.get("status") != "ACCEPT":
        raise RuntimeError(f"Prefect refused to resume flow run {run_id}: {body.get('details')}")
    return body["status"]


def resume_if_waiting(params: Params, version: str, run_input: dict[str, Any]) -> str | None:
    """Resume the run paused for `version` when there is one; returns its id (None: none was waiting)."""
    run_id = paused_run(params, version)
    if run_id is not None:
        resume(run_id, run_input)
    return run_id


def last_flow_runs() -> dict[str, Any] | None:
    """The newest run of each lorag flow on the Prefect server ({flow: {name, state, start}}); None without
    PREFECT_API_URL (each flow run then had its own throwaway server and nothing outlives it)."""
    import httpx

    api = _api()
    if api is None:
        return None
    flows = httpx.post(f"{api}/flows/filter", json={"limit": 50}, timeout=10).json()
    out = {}
    for found in sorted(flows, key=lambda f: f["name"]):
        if not found["name"].startswith("lorag-"):
            continue
        runs = httpx.post(f"{api}/flow_runs/filter", timeout=10, json={
            "flows": {"id": {"any_": [found["id"]]}}, "sort": "EXPECTED_START_TIME_DESC", "limit": 1}).json()
        if runs:
            run = runs[0]
            out[found["name"]] = {"run": run["name"], "state": (run.get("state") or {}).get("type"),
                                  "start": run.get("start_time") or run.get("expected_start_time")}
    return out
