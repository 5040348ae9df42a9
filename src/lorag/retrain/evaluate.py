"""Evaluate a run's adapter: eval loss base vs adapter on the held-out split (lorag.evaluation.adapter_eval), and
once registered the RAG x fine-tune matrix of its version (lorag.evaluation.matrix), recorded in MLflow
(lorag.tracking.evaluation). The matrix library never imports its recorder: this layer calls both."""

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
    return evaluate_version(params, str(version), champion=True, log=log)


def evaluate_version(params: Params, model: str = "challenger", *, champion: bool = True,
                     log: bool = True) -> EvalMatrix:
    """Resolve `model` (alias or version) and the champion, run the matrix, write the report and plot and, with
    `log`, record the evaluation run in MLflow and tag the version with it (`lorag.eval_run_id`)."""
    from lorag.evaluation.matrix import evaluate_matrix as run_matrix
    from lorag.evaluation.matrix import write_matrix
    from lorag.evaluation.plots import plot_matrix
    from lorag.evaluation.questions import load_question_set
    from lorag.tracking.adapters import ModelNotFound, find_version, resolve_model

    candidate = resolve_model(params, model)
    other = None
    if champion:
        try:
            found = find_version(params, "champion")
            if str(found.version) != candidate.version:
                other = resolve_model(params, "champion")
        except ModelNotFound:
            other = None
    matrix = run_matrix(params, load_question_set(params), candidate, other)
    plot_matrix(matrix, params.evaluation.plot_path)
    if log:
        from lorag.tracking.evaluation import log_evaluation

        matrix.run_id = log_evaluation(params, matrix, candidate)
    write_matrix(matrix, params.evaluation.report_path)  # after logging: the report names its MLflow run
    return matrix
