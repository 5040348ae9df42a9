"""The retrain flow on a real Prefect server and a real MLflow server: every step a task, a version registered."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.retrain import RETRAIN_LIMIT, retrain_flow
from lorag.config import load_params
from support.behavior import git, make_behavior_project

pytestmark = pytest.mark.slow  # a real training under a real Prefect and MLflow server

STEPS = {"prepare_examples", "snapshot_examples", "validate_examples", "train_adapter", "record_training",
         "evaluate_adapter", "register_adapter", "evaluate_matrix"}


def _task_states(flow_run_id) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name.rsplit("-", 1)[0]: r.state.type.value for r in runs}


def _mlflow(server: str, name: str) -> dict:
    return {"mlflow": {"tracking_uri": server, "train_experiment": f"{name}-train", "registered_model": name}}


def test_flow_runs_every_step_and_registers_a_challenger(prefect_server, mlflow_server, sample_base_model,
                                                         tmp_path: Path) -> None:
    """With a params file other than params.yaml (the training process once re-read params.yaml and failed)."""
    import mlflow

    from lorag.versioning.dvc_repo import recorded_revision

    root = make_behavior_project(tmp_path / "project", sample_base_model, _mlflow(mlflow_server, "flow-adapter"),
                                 prepared=False)
    other = root / "other.yaml"
    settings = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    settings["train"]["max_steps"] = 3  # params.yaml next to it says 4
    other.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    state = retrain_flow(str(other), wait_for_review=False, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["steps"] == 3
    states = _task_states(state.state_details.flow_run_id)
    assert STEPS <= states.keys() and {states[s] for s in STEPS} == {"COMPLETED"}

    client = mlflow.MlflowClient(mlflow_server)
    version = client.get_model_version_by_alias("flow-adapter", "challenger")
    assert str(version.version) == summary["version"] and version.run_id == summary["train_run_id"]
    params = load_params(other)
    assert summary["examples_data_rev"] == recorded_revision(params, params.examples.dir)
    assert version.tags["lorag.examples_data_rev"] == summary["examples_data_rev"]
    assert version.tags["lorag.eval_run_id"] == summary["eval_run_id"]
    # The evaluation matrix ran after registration; this project publishes no index, so the RAG rows are
    # recorded as missing with the fix instead of failing the flow or scoring 0.
    from lorag.tracking.evaluation import read_evaluation

    metrics = read_evaluation(params, summary["version"])
    assert metrics["adapter.f1"] == summary["matrix"]["adapter.f1"] and "adapter.loss" in metrics
    assert metrics["adapter_rag.f1"] != metrics["adapter_rag.f1"]  # NaN
    record = mlflow.artifacts.load_dict(f"runs:/{summary['eval_run_id']}/eval_matrix.json")
    assert "lorag reindex" in record["missing"]["adapter_rag.f1"]
    assert "data/examples.dvc" in git(root, "ls-files").splitlines()  # the snapshot is committed
    assert (Path(summary["run_dir"]) / "adapter" / "adapter_model.safetensors").is_file()
    with get_client(sync_client=True) as prefect:
        assert prefect.read_global_concurrency_limit_by_name(RETRAIN_LIMIT).limit == 1


def test_flow_stops_at_bad_examples_and_registers_nothing(prefect_server, mlflow_server, sample_base_model,
                                                          tmp_path: Path) -> None:
    import mlflow

    root = make_behavior_project(tmp_path / "project", sample_base_model, _mlflow(mlflow_server, "bad-adapter"))
    train = root / "data" / "examples" / "train.jsonl"
    lines = train.read_text(encoding="utf-8").splitlines()
    train.write_text("\n".join(["not json"] * 40 + lines) + "\n", encoding="utf-8")  # far over the failure ratio

    state = retrain_flow(str(root / "params.yaml"), wait_for_review=False, return_state=True)
    assert state.is_failed()
    states = _task_states(state.state_details.flow_run_id)
    assert states["validate_examples"] == "FAILED"
    assert "train_adapter" not in states and "register_adapter" not in states
    client = mlflow.MlflowClient(mlflow_server)
    assert client.search_model_versions("name = 'bad-adapter'") == []
    assert client.get_experiment_by_name("bad-adapter-train") is None
