"""One MLflow run per completed training: called by the launcher only after the subprocess exited 0.

The training processes never talk to MLflow, so a failed or killed run leaves no run behind; what gets logged
is read back from run_dir (summary.json, metrics.jsonl, the adapter). Registering the adapter as a model
version is the registry's job, from the run id returned here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.training.launcher import TrainResult

_SUMMARY_METRICS = ("steps", "tokens", "tokens_per_s", "train_seconds", "final_loss", "world_size",
                    "trainable_params", "examples", "rows", "peak_memory_bytes")


def record_training(params: Params, result: TrainResult) -> str:
    """Log knobs, per-step curves, summary metrics and the adapter; returns the MLflow run id."""
    import time

    import mlflow
    from mlflow.entities import Metric

    from lorag.tracking import flatten, mlflow_run

    s = result.summary
    tags = {
        "lorag.track": "behavior",
        "lorag.base_model": str(s["base_model"]),
        "lorag.base_model_revision": str(s.get("base_model_revision") or ""),
        "lorag.run_dir": str(result.run_dir),
        "lorag.resumed_from_step": str(s.get("resumed_from_step") or ""),
    }
    with mlflow_run(params, params.mlflow.train_experiment, f"train-{result.run_dir.name}", tags) as run:
        knobs = {**flatten("train", params.train), **flatten("examples", params.examples)}
        mlflow.log_params({k: str(v)[:500] for k, v in knobs.items()})
        now = int(time.time() * 1000)
        curves = [Metric(key, float(m[key]), now, int(m["step"]))
                  for m in result.metrics for key in ("loss", "lr", "tokens_per_s")]
        client = mlflow.MlflowClient()
        for i in range(0, len(curves), 900):  # log_batch takes at most 1000 metrics per call
            client.log_batch(run.info.run_id, metrics=curves[i : i + 900])
        mlflow.log_metrics({k: float(s[k]) for k in _SUMMARY_METRICS if s.get(k) is not None})
        mlflow.log_metric("skipped_examples", float(len(s.get("skipped", []))))
        mlflow.log_artifacts(str(result.adapter_dir), artifact_path="adapter")
        mlflow.log_artifact(str(result.run_dir / "summary.json"))
        mlflow.log_artifact(str(result.run_dir / "metrics.jsonl"))
        return run.info.run_id
