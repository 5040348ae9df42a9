"""The audit ledger in MLflow: one run per event in the experiment `promotion.audit_experiment`.

An event is never updated: each is a new, finished run whose tags hold the event (searchable, shown in the MLflow
UI) and whose artifact `event.json` holds it whole. Runs carry no params, so nothing secret can leak into them
from the environment; the actor is the name lorag checked, and MLflow's own `mlflow.user` tag says which account
wrote it. Give trainers EDIT on this experiment (append) and nobody but admins MANAGE (delete).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lorag.promotion.ledger import AuditEvent

if TYPE_CHECKING:
    from lorag.config import Params

_TAG = "lorag.audit."
_FIELDS = ("kind", "model", "version", "actor", "reason", "alias", "from_version", "to_version", "evidence_hash",
           "at", "seq")


def append_event(params: Params, event: AuditEvent, artifacts: dict[str, Any] | None = None) -> str:
    """Append `event` (plus JSON `artifacts`, e.g. the release manifest); returns the event's run id."""
    import mlflow

    from lorag.tracking import configure_mlflow

    experiment_id = configure_mlflow(params, params.promotion.audit_experiment)
    client = mlflow.MlflowClient()
    tags = {f"{_TAG}{k}": str(getattr(event, k))[:4900] for k in _FIELDS if getattr(event, k) not in (None, "")}
    tags["lorag.track"] = "promotion"
    name = f"{event.kind} v{event.version}" if event.version else event.kind
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    client.log_dict(run.info.run_id, event.to_dict(), "event.json")
    for filename, payload in (artifacts or {}).items():
        client.log_dict(run.info.run_id, payload, filename)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def read_events(params: Params, *, kind: str | None = None, version: str | None = None) -> list[AuditEvent]:
    """Every event (optionally of one kind / version), oldest first."""
    import mlflow

    from lorag.tracking import configure_mlflow

    experiment_id = configure_mlflow(params, params.promotion.audit_experiment)
    client = mlflow.MlflowClient()
    clauses = [f"tags.`{_TAG}model` = '{params.mlflow.registered_model}'"]
    if kind:
        clauses.append(f"tags.`{_TAG}kind` = '{kind}'")
    if version:
        clauses.append(f"tags.`{_TAG}version` = '{version}'")
    events, token = [], None
    while True:
        page = client.search_runs([experiment_id], " and ".join(clauses), max_results=1000, page_token=token)
        events += [_from_tags(run.data.tags) for run in page]
        token = page.token
        if not token:
            break
    return sorted(events, key=lambda e: (e.at, e.seq))


def _from_tags(tags: dict[str, str]) -> AuditEvent:
    raw: dict[str, Any] = {k: tags.get(f"{_TAG}{k}") for k in _FIELDS}
    raw["seq"] = int(raw["seq"] or 0)
    raw["reason"] = raw["reason"] or ""
    return AuditEvent(**raw)
