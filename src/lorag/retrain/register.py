"""Register a run's adapter in MLflow as the `challenger` version, with its evaluation and lineage, and the RAG
app that serves it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.evaluation.adapter_eval import EvalReport
    from lorag.tracking.registry import Registered
    from lorag.training.run_folder import RunFolder


def register(params: Params, run: RunFolder, report: EvalReport | None = None) -> Registered:
    """Register `run`'s adapter (recorded by `retrain.train.record`); `report` defaults to the last evaluation.

    The RAG app pyfunc (mlflow/rag_app.py) is logged and registered beside it (`<registered_model>-rag`).
    Writes run/registered.json. A retry finds the version already made from the run instead of adding a twin.
    """
    from lorag.retrain.evaluate import read_evaluation
    from lorag.tracking.rag_app import log_rag_app
    from lorag.tracking.registry import register_adapter

    report = report if report is not None else read_evaluation(params)
    registered = register_adapter(params, run.read_mlflow_run(), run.require_adapter(), report,
                                  plot=params.adapter_eval.plot_path)
    log_rag_app(params, registered, run.require_adapter())
    run.write_registered(registered.summary())
    return registered
