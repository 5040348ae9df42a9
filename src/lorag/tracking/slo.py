"""The knowledge track's service level: change-to-searchable latency, one MLflow run per measured change.

Logged in the re-index experiment (tag lorag.slo=change_to_searchable), so the MLflow UI charts it next to the
re-index runs it measures; `mode` says who measured (watch in-process: the new text seen by search; deployment:
the alias switched after a triggered re-index).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorag.config import Params


def record_change_latency(params: Params, seconds: float, mode: str, data_rev: str = "", files: int = 1,
                          detail: dict[str, float] | None = None) -> str:
    """Log one change's latency (seconds from the file's mtime to searchable); returns the run id."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from lorag.tracking import configure_mlflow

    experiment_id = configure_mlflow(params, params.mlflow.reindex_experiment)
    client = MlflowClient(params.tracking_uri)
    tags = {"lorag.slo": "change_to_searchable", "lorag.mode": mode, "lorag.data_rev": data_rev,
            "lorag.index": params.index.name}
    run = client.create_run(experiment_id, run_name=f"slo-{time.strftime('%Y%m%dT%H%M%S')}", tags=tags)
    now = int(time.time() * 1000)
    metrics = [Metric("change_to_searchable_s", float(seconds), now, 0), Metric("files_changed", float(files), now, 0)]
    metrics += [Metric(f"seconds_{k}", float(v), now, 0) for k, v in (detail or {}).items()]
    client.log_batch(run.info.run_id, metrics=metrics)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id
