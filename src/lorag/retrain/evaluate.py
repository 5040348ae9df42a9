"""Evaluate a run's adapter on the held-out split against its own base model (lorag.evaluation.adapter_eval)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.evaluation.adapter_eval import EvalReport
    from lorag.training.run_folder import RunFolder


def evaluate(params: Params, run: RunFolder) -> EvalReport:
    """Score base and base + adapter; writes `adapter_eval.report_path` and the plot `adapter_eval.plot_path`."""
    from lorag.evaluation.adapter_eval import run_evaluation

    return run_evaluation(params, run)


def read_evaluation(params: Params) -> EvalReport:
    """The report the last `evaluate` wrote (the register stage reads the evaluate stage's output)."""
    from lorag.evaluation.adapter_eval import read_report

    return read_report(params.adapter_eval.report_path)
