"""The evaluation run on a real MLflow server: metrics under contract names, the table, plot and per-question
artifacts, the version tag, the reader, and the champion's rows."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lorag.config import load_params

pytestmark = pytest.mark.slow


def test_evaluation_run_is_recorded_and_read_back(rag_project: Path) -> None:
    import mlflow

    from lorag.retrain.evaluate import evaluate_version
    from lorag.tracking.evaluation import NoEvaluation, read_evaluation

    params = load_params(rag_project / "params.yaml")
    client = mlflow.MlflowClient(params.tracking_uri)
    name = params.mlflow.registered_model
    with pytest.raises(NoEvaluation, match="lorag eval --model 1"):
        read_evaluation(params, "1")  # registered, but only the loss evaluation exists yet
    matrix = evaluate_version(params, "1")
    version = client.get_model_version(name, "1")
    assert version.tags["lorag.eval_run_id"] == matrix.run_id
    run = client.get_run(matrix.run_id)
    assert run.data.tags["lorag.model_version"] == "1" and run.data.tags["lorag.kind"] == "evaluation-matrix"
    assert run.data.tags["lorag.question_set_hash"] == matrix.question_set_hash
    assert run.data.tags["lorag.train_run_id"] == version.run_id
    assert run.data.tags["lorag.index_collection"] not in ("", "None")
    artifacts = {a.path for a in client.list_artifacts(matrix.run_id)}
    assert {"eval_matrix.json", "eval_matrix_table.json", "eval_per_question.json", "eval_matrix.png",
            "question_set.json"} <= artifacts
    table = mlflow.artifacts.load_dict(f"runs:/{matrix.run_id}/eval_per_question.json")  # log_table's layout
    assert {"question", "configuration", "answer", "cited_sources", "correct"} <= set(table["columns"])
    assert len(table["data"]) == 4 * len(matrix.questions)

    read = read_evaluation(params, 1)
    expected = matrix.metrics()
    assert read.keys() == expected.keys()
    assert all((math.isnan(v) and math.isnan(read[k])) or read[k] == pytest.approx(v) for k, v in expected.items())
    record = mlflow.artifacts.load_dict(f"runs:/{matrix.run_id}/eval_matrix.json")
    assert record["question_set_hash"] == matrix.question_set_hash and record["missing"] == matrix.missing


def test_champion_rows_and_paired_difference(rag_project: Path) -> None:
    """A champion carrying the same adapter as the candidate: its rows equal the adapter's, every paired
    difference on F1 is exactly 0 with a [0, 0] interval."""
    import mlflow

    from lorag.retrain.evaluate import evaluate_version

    params = load_params(rag_project / "params.yaml")
    client = mlflow.MlflowClient(params.tracking_uri)
    name = params.mlflow.registered_model
    one = client.get_model_version(name, "1")
    twin = mlflow.register_model(one.source, name)  # the same logged model: same run, same adapter
    client.set_registered_model_alias(name, "champion", twin.version)
    try:
        matrix = evaluate_version(params, "1", log=False)
    finally:
        client.delete_registered_model_alias(name, "champion")
    m = matrix.metrics()
    assert matrix.rows[-2:] == ["champion", "champion_rag"] and matrix.champion_version == str(twin.version)
    for pair in ("adapter_vs_champion", "adapter_rag_vs_champion_rag"):
        assert (m[f"diff.{pair}.f1"], m[f"diff.{pair}.f1.ci_low"], m[f"diff.{pair}.f1.ci_high"]) == (0.0, 0.0, 0.0)
    assert m["champion_rag.f1"] == m["adapter_rag.f1"]
