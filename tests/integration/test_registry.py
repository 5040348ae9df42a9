"""The adapter in a real MLflow server (SQLite, and PostgreSQL where its binaries exist): run, model, version.

One tiny training (sample examples, demo base model, 4 steps) is recorded and registered against each
backend; the served model answers what the library generates; a training that fails in its subprocess must
leave no run and no version behind.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lorag.config import load_params
from support.behavior import make_behavior_project

pytestmark = pytest.mark.slow  # trains once and starts MLflow servers

INDEX_STATE = {"collection": "lorag_docs_20261121", "data_rev": "d" * 32}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, sample_base_model: Path):
    """A project whose examples are DVC-snapshotted and validated, an index published, one adapter trained."""
    from lorag.index.state import IndexState
    from lorag.index.stores import open_store
    from lorag.retrain.evaluate import evaluate
    from lorag.retrain.examples import snapshot_examples, validate_examples
    from lorag.retrain.train import train

    root = make_behavior_project(tmp_path_factory.mktemp("registry") / "project", sample_base_model)
    params = load_params(root / "params.yaml")
    data_rev = snapshot_examples(params)
    validate_examples(params)
    store = open_store(params)
    try:
        state = IndexState(collection=INDEX_STATE["collection"], data_rev=INDEX_STATE["data_rev"], git_rev=None,
                           embedder="e", chunking="c")
        store.save_state(params.index.name, state.to_dict())
    finally:
        store.close()
    result = train(params, root / "runs" / "one")
    report = evaluate(params, result.run)
    return root, result, report, data_rev


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("mlflow_server" if request.param == "sqlite" else "mlflow_server_pg")


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_run_version_tags_alias_and_round_trip(trained, server: str) -> None:
    import mlflow

    from lorag.tracking.registry import CHALLENGER, register_adapter
    from lorag.tracking.training import record_training

    root, result, report, data_rev = trained
    params = load_params(root / "params.yaml", [f"mlflow.tracking_uri={server}"])
    run_id = record_training(params, result)
    registered = register_adapter(params, run_id, result.adapter_dir, report,
                                  plot=params.adapter_eval.plot_path)

    client = mlflow.MlflowClient(server)
    name = params.mlflow.registered_model
    version = client.get_model_version_by_alias(name, CHALLENGER)
    assert str(version.version) == registered.version and version.run_id == run_id
    tags = version.tags
    assert tags["lorag.base_model"] == params.train.base_model
    assert tags["lorag.examples_data_rev"] == data_rev
    assert tags["lorag.index_collection"] == INDEX_STATE["collection"]
    assert tags["lorag.index_data_rev"] == INDEX_STATE["data_rev"]
    assert tags["lorag.train_run_id"] == run_id and tags["lorag.eval_run_id"] == registered.eval_run_id
    for key, value in report.metrics().items():
        assert float(tags[f"lorag.eval.{key}"]) == pytest.approx(value)

    run = client.get_run(run_id)
    assert run.data.tags["lorag.examples_data_rev"] == data_rev
    assert run.data.tags["lorag.git_commit"] != "none"
    assert "examples ok" in run.data.tags["lorag.examples_validation"]
    assert run.data.params["train.max_steps"] == "4" and "hardware.torch" in run.data.params
    assert [m.step for m in sorted(client.get_metric_history(run_id, "loss"), key=lambda m: m.step)] == [1, 2, 3, 4]
    lineage = json.loads(Path(client.download_artifacts(run_id, "lineage.json")).read_text())
    assert lineage == json.loads(json.dumps(registered.lineage))
    assert lineage["model_version"] == registered.version and lineage["examples_data_rev"] == data_rev
    eval_run = client.get_run(registered.eval_run_id)
    assert eval_run.data.tags["lorag.train_run_id"] == run_id
    assert eval_run.data.metrics["adapter.loss"] == pytest.approx(report.adapter.loss)
    assert "eval.png" in {a.path for a in client.list_artifacts(registered.eval_run_id)}

    mlflow.set_tracking_uri(server)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@{CHALLENGER}")
    assert _files(Path(loaded.unwrap_python_model().adapter_dir)) == _files(result.adapter_dir)
    _serves_what_the_library_generates(loaded, params, result.adapter_dir)

    again = register_adapter(params, run_id, result.adapter_dir, report)  # a retry: same version, no twin
    assert again.version == registered.version
    assert len(client.search_model_versions(f"name = '{name}'")) == 1


def _serves_what_the_library_generates(loaded, params, adapter_dir: Path) -> None:
    """The MLflow model answers a prompt exactly as lorag's own generation does (same model, same tokens)."""
    from peft import PeftModel

    from lorag.answer.format import format_prompt
    from lorag.evaluation.adapter_eval import eval_examples_path, generate_reply
    from lorag.training.data import load_examples
    from lorag.training.lora import load_base

    example = next(e for e in load_examples(eval_examples_path(params)) if e.context)
    prompts = [format_prompt(example.instruction, example.context), "How often should hives be inspected?"]
    base, tokenizer = load_base(params)
    model = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    expected = [generate_reply(model, tokenizer, p, params.adapter_eval.max_new_tokens) for p in prompts]
    assert loaded.predict(prompts) == expected
    assert all(expected)  # a non-empty answer each: the comparison is not between two empty strings


def test_failed_training_registers_nothing(trained, mlflow_server: str) -> None:
    """`lorag train --register` whose training process fails: exit 1, no run, no registered model."""
    import mlflow
    from typer.testing import CliRunner

    from lorag.cli import app

    root = trained[0]
    examples = root / ".lorag" / "examples-clean" / "train.jsonl"  # what training reads
    good = examples.read_text(encoding="utf-8")
    overrides = [f"mlflow.tracking_uri={mlflow_server}", "mlflow.train_experiment=failed-train",
                 "mlflow.registered_model=failed-adapter"]
    try:
        # Passes preflight (the file exists and is not empty); the training process fails reading it.
        examples.write_text('{"id": "broken"}\n', encoding="utf-8")
        args = ["train", "--params", str(root / "params.yaml"), "--register", "--run-dir", str(root / "runs" / "bad")]
        for item in overrides:
            args += ["--set", item]
        outcome = CliRunner().invoke(app, args)
    finally:
        examples.write_text(good, encoding="utf-8")
    assert outcome.exit_code == 1, outcome.output
    assert "training exited with code" in outcome.output
    client = mlflow.MlflowClient(mlflow_server)
    assert client.get_experiment_by_name("failed-train") is None
    assert client.search_model_versions("name = 'failed-adapter'") == []
    assert not (root / "runs" / "bad" / "summary.json").exists()
