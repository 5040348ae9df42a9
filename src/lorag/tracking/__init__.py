"""All of lorag's MLflow I/O. This module: where runs go and how a run is opened (both tracks).

    tracking.training   the behavior track's runs: one per completed training, one per evaluation
    tracking.registry   the adapter as a logged pyfunc model, its registered version, lineage tags, aliases
    tracking.reindex    the knowledge track's run per re-index, and the repair of runs a killed process left open
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params


def configure_mlflow(params: Params, experiment: str) -> str:
    """Point MLflow at params.mlflow and make sure the experiment exists; returns its id.

    A new experiment gets an artifact location from params so artifacts never land in ./mlruns of whatever
    directory the process happens to run in.
    """
    import mlflow

    uri = params.tracking_uri
    if uri.startswith("sqlite:///"):
        params.path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    location = params.mlflow.artifact_location
    location.mkdir(parents=True, exist_ok=True)
    return mlflow.create_experiment(experiment, artifact_location=location.as_uri())


@contextmanager
def mlflow_run(params: Params, experiment: str, run_name: str, tags: Mapping[str, str] | None = None) -> Iterator[Any]:
    """Open an MLflow run in `experiment`; a failure inside marks the run FAILED (MLflow's own behaviour)."""
    import mlflow

    experiment_id = configure_mlflow(params, experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags or {})) as run:
        yield run


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Nested params -> {"a.b": v} for mlflow.log_params (which takes flat string-able values)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: value}
