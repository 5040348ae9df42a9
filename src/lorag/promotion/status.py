"""Champion and challenger at a glance (`lorag status`): versions, key metrics, age, the champion's release."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params


def _age(ms: int | None) -> str:
    if not ms:
        return "-"
    seconds = int(datetime.now(timezone.utc).timestamp() - ms / 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _metrics(params: Params, version: str) -> dict[str, float | None]:
    from lorag.tracking.evaluation import NoEvaluation, read_evaluation

    try:
        found = read_evaluation(params, version)
    except NoEvaluation:
        return {}
    out = {}
    for key in params.promotion.key_metrics:
        value = found.get(key)
        out[key] = None if value is None or math.isnan(value) else value
    return out


def model_status(params: Params) -> dict[str, Any]:
    """{"champion": {...} | None, "challenger": {...} | None} read from the registry (nothing is written)."""
    import mlflow

    from lorag.promotion.promote import current_manifest
    from lorag.tracking.registry import alias_version, champion_source

    out: dict[str, Any] = {"champion": None, "challenger": None}
    uri = params.tracking_uri
    if uri.startswith("sqlite:///") and not params.path(uri.removeprefix("sqlite:///")).is_file():
        return out  # nothing tracked yet; a status read must not create the database
    client = mlflow.MlflowClient(uri)
    name = params.mlflow.registered_model
    source = champion_source(params, client)
    if source is not None:
        released, version = source
        mv = client.get_model_version(name, version)
        manifest = current_manifest(params) or {}
        out["champion"] = {"version": version, "released_model": params.promotion.released_model,
                           "released_version": released, "age": _age(mv.creation_timestamp),
                           "approved_by": manifest.get("approver"), "approved_at": manifest.get("approved_at"),
                           "docs_data_rev": manifest.get("docs_data_rev"),
                           "index_collection": manifest.get("index_collection"),
                           "metrics": _metrics(params, version)}
    challenger = alias_version(client, name, "challenger")
    if challenger is not None:
        version = str(challenger.version)
        tags = challenger.tags or {}
        out["challenger"] = {"version": version, "age": _age(challenger.creation_timestamp),
                             "gates": {"true": "passed", "false": "failed"}.get(tags.get("lorag.gate.approved", ""),
                                                                             "not reviewed"),
                             "review": tags.get("lorag.review.status", "waiting"),
                             "metrics": _metrics(params, version)}
    return out


def flows_or_error() -> dict[str, Any] | None:
    """The last run of each flow (lorag.promotion.resume.last_flow_runs); an unreachable server is reported."""
    from lorag.promotion.resume import last_flow_runs

    try:
        return last_flow_runs()
    except Exception as exc:  # noqa: BLE001 - status shows what it can
        return {"error": f"{type(exc).__name__}: {exc}"}
