"""One behavior-track run end to end for the CLI: train -> record [-> evaluate -> register -> evaluation matrix].

The Prefect flow calls the same steps one task each (flows/retrain.py), with examples and DVC before them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorag.retrain.train import record, train

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.evaluation.adapter_eval import EvalReport
    from lorag.evaluation.matrix import EvalMatrix
    from lorag.tracking.registry import Registered
    from lorag.training.launcher import TrainResult


@dataclass
class Retrained:
    trained: TrainResult
    train_run_id: str
    report: EvalReport | None = None
    registered: Registered | None = None
    matrix: EvalMatrix | None = None

    def summary(self) -> dict[str, Any]:
        s = self.trained.summary
        out: dict[str, Any] = {k: s.get(k) for k in ("steps", "resumed_from_step", "tokens", "final_loss",
                                                      "tokens_per_s", "world_size", "precision")}
        out.update(run_dir=str(self.trained.run_dir), adapter_dir=str(self.trained.adapter_dir),
                   mlflow_run_id=self.train_run_id)
        if self.registered is not None and self.report is not None:
            out.update(registered_model=self.registered.name, version=self.registered.version,
                       alias="challenger", eval=self.report.metrics())
        if self.matrix is not None:
            m = self.matrix.metrics()
            out["matrix"] = {k: m[k] for k in ("base.f1", "base_rag.f1", "adapter.f1", "adapter_rag.f1",
                                               "adapter_rag.citation_accuracy", "retrieval.recall_at_k")}
        return out


def run_retrain(params: Params, run_dir: Path | None = None, *, pipeline: bool = False, register: bool = False,
                on_line: Callable[[str], None] | None = None) -> Retrained:
    """Train (resuming an unfinished run of the same params and data), record it in MLflow, and with `register`
    evaluate it, register it as the `challenger` and run its evaluation matrix. A failed training raises before anything is recorded.

    `pipeline` trains in the DVC pipeline's folder (the train stage); `run_dir` in the folder given.
    """
    from lorag.retrain.evaluate import evaluate, evaluate_matrix
    from lorag.retrain.register import register as register_run

    trained = train(params, run_dir, pipeline=pipeline, on_line=on_line)
    out = Retrained(trained, record(params, trained))
    if register:
        out.report = evaluate(params, trained.run)
        out.registered = register_run(params, trained.run, out.report)
        out.matrix = evaluate_matrix(params, out.registered.version)
    return out
