"""MLflow runs of the behavior track: one run per completed training, one per evaluation.

The training processes never talk to MLflow: lorag.retrain calls `record_training` only after the subprocess
exited 0, so a failed or killed run leaves no run behind. What gets logged is read back from run_dir
(summary.json, metrics.jsonl, the adapter) plus the context the run cannot see from inside: hardware, the git
commit, the DVC revision of the examples and the validation report they passed.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.evaluation.adapter_eval import EvalReport
    from lorag.training.launcher import TrainResult

_SUMMARY_METRICS = ("steps", "tokens", "tokens_per_s", "train_seconds", "final_loss", "world_size",
                    "trainable_params", "examples", "rows", "peak_memory_bytes")
TAG_EXAMPLES_REV = "lorag.examples_data_rev"
TAG_GIT_COMMIT = "lorag.git_commit"


def git_commit(root: Path) -> tuple[str | None, bool]:
    """(HEAD commit or None outside git / before the first commit, whether tracked files differ from it)."""
    head = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD"], cwd=root, capture_output=True,
                          text=True, check=False)
    if head.returncode != 0:
        return None, False
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True, check=False)
    return head.stdout.strip(), bool(dirty.stdout.strip())


def hardware() -> dict[str, Any]:
    """Where the run happened, enough to explain a throughput number later."""
    import os

    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu_count": os.cpu_count(), "torch": torch.__version__,
                            "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0}
    if info["cuda_devices"]:
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def examples_context(params: Params) -> dict[str, Any]:
    """DVC revision of examples.dir and the validation report it passed (None where there is none yet)."""
    from lorag.versioning.dvc_repo import recorded_revision

    report_path = params.examples.report_path
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else None
    return {"data_rev": recorded_revision(params, params.examples.dir), "validation": report}


def record_training(params: Params, result: TrainResult) -> str:
    """Log knobs, per-step curves, summary metrics, context and the adapter files; returns the MLflow run id."""
    import mlflow
    from mlflow.entities import Metric

    from lorag.tracking import flatten, mlflow_run

    s = result.summary
    commit, dirty = git_commit(params.root)
    examples = examples_context(params)
    tags = {
        "lorag.track": "behavior",
        "lorag.base_model": str(s["base_model"]),
        "lorag.base_model_revision": str(s.get("base_model_revision") or ""),
        "lorag.run_dir": str(result.run.path),
        "lorag.resumed_from_step": str(s.get("resumed_from_step") or ""),
        TAG_GIT_COMMIT: commit or "none",
        "lorag.git_dirty": str(dirty).lower(),
        TAG_EXAMPLES_REV: examples["data_rev"] or "none",
    }
    validation = examples["validation"]
    if validation is not None:
        tags["lorag.examples_validation"] = str(validation.get("summary", ""))[:5000]
    with mlflow_run(params, params.mlflow.train_experiment, f"train-{result.run.path.name}", tags) as run:
        knobs = {**flatten("train", params.train), **flatten("examples", params.examples),
                 **flatten("hardware", hardware())}
        mlflow.log_params({k: str(v)[:500] for k, v in knobs.items()})
        now = int(time.time() * 1000)
        curves = [Metric(key, float(m[key]), now, int(m["step"]))
                  for m in result.metrics for key in ("loss", "lr", "tokens_per_s")]
        client = mlflow.MlflowClient()
        for i in range(0, len(curves), 900):  # log_batch takes at most 1000 metrics per call
            client.log_batch(run.info.run_id, metrics=curves[i : i + 900])
        mlflow.log_metrics({k: float(s[k]) for k in _SUMMARY_METRICS if s.get(k) is not None})
        mlflow.log_metric("skipped_examples", float(len(s.get("skipped", []))))
        if validation is not None:
            mlflow.log_metric("examples_failure_ratio", float(validation["failure_ratio"]))
            mlflow.log_dict(validation, "examples_validation.json")
        mlflow.log_artifacts(str(result.run.adapter), artifact_path="adapter")
        mlflow.log_artifact(str(result.run.summary_file))
        mlflow.log_artifact(str(result.run.metrics_file))
        return run.info.run_id


def record_evaluation(params: Params, train_run_id: str, report: EvalReport, plot: Path | None) -> str:
    """One eval run (same experiment), linked to its training run by tag; returns the eval run id."""
    import mlflow

    from lorag.tracking import flatten, mlflow_run

    tags = {"lorag.track": "behavior", "lorag.kind": "evaluation", "lorag.train_run_id": train_run_id}
    run_name = f"eval-{train_run_id[:8]}"
    with mlflow_run(params, params.mlflow.train_experiment, run_name, tags) as run:
        mlflow.log_params({k: str(v) for k, v in flatten("adapter_eval", params.adapter_eval).items()})
        mlflow.log_metrics(report.metrics())
        mlflow.log_dict(report.to_dict(), "eval.json")
        if plot is not None and Path(plot).is_file():
            mlflow.log_artifact(str(plot))
        return run.info.run_id
