"""The evaluation run of a model version in MLflow, and the reader gates and drift use.

One run per evaluation of a version (experiment `mlflow.train_experiment`), tagged `lorag.model_version` and
linked to its training run, the examples data revision and the index collection + data revision it retrieved
from; the version points at its newest evaluation run with the tag `lorag.eval_run_id`. The run holds the
contract's metrics (lorag.evaluation.names; NaN stays NaN), the matrix as a table, the heatmap, the per-question
table (question, configuration, answer, cited sources, correct) and `eval_matrix.json`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.evaluation.matrix import EvalMatrix
    from lorag.tracking.adapters import ResolvedModel

TAG_EVAL_RUN = "lorag.eval_run_id"


class NoEvaluation(LookupError):
    """A registered version has no evaluation run; the message names the command that makes one."""


def matrix_table(matrix: EvalMatrix) -> dict[str, list]:
    """One line per configuration: adapter?, rag?, every row metric with its interval (the 2x2 (+2) matrix)."""
    from lorag.evaluation.matrix import ROW_SETUP
    from lorag.evaluation.names import ROW_METRICS

    m = matrix.metrics()
    cols: dict[str, list] = {"row": [], "model": [], "rag": []}
    for row in matrix.rows:
        slot, rag = ROW_SETUP[row]
        cols["row"].append(row)
        cols["model"].append(slot or "base")
        cols["rag"].append(rag)
        for k in ROW_METRICS:
            for name in (k, f"{k}.ci_low", f"{k}.ci_high"):
                v = m[f"{row}.{name}"]
                cols.setdefault(name, []).append(None if math.isnan(v) else v)
    return cols


def _lineage_tags(params: Params, candidate: ResolvedModel, matrix: EvalMatrix) -> dict[str, str]:
    import mlflow

    from lorag.tracking.registry import index_lineage

    version = mlflow.MlflowClient().get_model_version(params.mlflow.registered_model, candidate.version)
    vtags = version.tags or {}
    index = index_lineage(params)
    tags = {"lorag.track": "behavior", "lorag.kind": "evaluation-matrix",
            "lorag.model_name": params.mlflow.registered_model, "lorag.model_version": str(candidate.version),
            "lorag.train_run_id": str(candidate.train_run_id),
            "lorag.examples_data_rev": vtags.get("lorag.examples_data_rev", "none"),
            "lorag.index_collection": str(index["index_collection"]),
            "lorag.index_data_rev": str(index["index_data_rev"]),
            "lorag.question_set_hash": matrix.question_set_hash,
            "lorag.champion_version": str(matrix.champion_version),
            "lorag.raft_failure": str(matrix.raft["adapter_rag_below_adapter"]).lower()}
    return tags


def log_evaluation(params: Params, matrix: EvalMatrix, candidate: ResolvedModel) -> str:
    """Record the evaluation run and tag the version with it; returns the run id."""
    import mlflow
    import pandas as pd

    from lorag.tracking import configure_mlflow, flatten, mlflow_run

    configure_mlflow(params, params.mlflow.train_experiment)
    tags = _lineage_tags(params, candidate, matrix)
    with mlflow_run(params, params.mlflow.train_experiment, f"eval-matrix-v{candidate.version}", tags) as run:
        mlflow.log_params({k: str(v) for k, v in flatten("evaluation", params.evaluation).items()})
        mlflow.log_param("retrieval_k", params.evaluation.top_k or params.search.top_k)
        mlflow.log_metrics(matrix.metrics())  # NaN is stored as NaN (MLflow keeps an is_nan flag)
        mlflow.log_table(pd.DataFrame(matrix_table(matrix)), "eval_matrix_table.json")
        mlflow.log_table(pd.DataFrame(matrix.per_question), "eval_per_question.json")
        mlflow.log_dict(matrix.to_dict(), "eval_matrix.json")
        mlflow.log_dict({"questions": matrix.questions}, "question_set.json")
        if params.evaluation.plot_path.is_file():
            mlflow.log_artifact(str(params.evaluation.plot_path))
        run_id = run.info.run_id
    mlflow.MlflowClient().set_model_version_tag(params.mlflow.registered_model, candidate.version, TAG_EVAL_RUN,
                                                run_id)
    return run_id


def read_evaluation(params: Params, version: str | int) -> dict[str, float]:
    """The contract metrics of a registered version's evaluation run (NaN stays NaN).

    Raises NoEvaluation when the version was never evaluated by the matrix.
    """
    import mlflow

    from lorag.evaluation.names import KNOWN_METRIC
    from lorag.tracking import configure_mlflow

    configure_mlflow(params, params.mlflow.train_experiment)
    client = mlflow.MlflowClient()
    name = params.mlflow.registered_model
    tags = client.get_model_version(name, str(version)).tags or {}
    run_id = tags.get(TAG_EVAL_RUN)
    run = client.get_run(run_id) if run_id else None
    if run is None or run.data.tags.get("lorag.kind") != "evaluation-matrix":
        raise NoEvaluation(f"{name} version {version} has no evaluation-matrix run: evaluate it with "
                           f"`lorag eval --model {version}` (the retrain flow and `dvc repro` do it after training).")
    return {k: float(v) for k, v in run.data.metrics.items() if KNOWN_METRIC(k)}


def evaluation_record(params: Params, version: str | int) -> dict[str, Any]:
    """The version's eval_matrix.json (metrics, missing, question_set_hash, rows) from its evaluation run."""
    import mlflow

    read_evaluation(params, version)  # raises the clear error when there is none
    run_id = mlflow.MlflowClient().get_model_version(params.mlflow.registered_model, str(version)).tags[TAG_EVAL_RUN]
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/eval_matrix.json")
