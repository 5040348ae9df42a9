"""Evaluate a run's adapter: eval loss base vs adapter on the held-out split (lorag.evaluation.adapter_eval), and
once registered the RAG x fine-tune matrix of its version (lorag.evaluation.matrix)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.evaluation.adapter_eval import EvalReport
    from lorag.evaluation.matrix import EvalMatrix
    from lorag.training.run_folder import RunFolder


def evaluate(params: Params, run: RunFolder) -> EvalReport:
    """Score base and base + adapter; writes `adapter_eval.report_path` and the plot `adapter_eval.plot_path`."""
    from lorag.evaluation.adapter_eval import run_evaluation

    return run_evaluation(params, run)


def read_evaluation(params: Params) -> EvalReport:
    """The report the last `evaluate` wrote (the register stage reads the evaluate stage's output)."""
    from lorag.evaluation.adapter_eval import read_report

    return read_report(params.adapter_eval.report_path)


def evaluate_matrix(params: Params, version: str, *, log: bool = True) -> EvalMatrix:
    """The RAG x fine-tune matrix of registered `version` (with the champion's rows when one exists), recorded as
    the version's evaluation run (`lorag.eval_run_id`); writes `evaluation.report_path` and `evaluation.plot_path`."""
    from lorag.evaluation.matrix import evaluate_version

    return evaluate_version(params, str(version), champion=True, log=log)
