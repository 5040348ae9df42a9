"""The behavior track's small decisions, without training: precision, params across the process boundary,
the base model reference, the run folder a (re-)run trains in, and the one citation format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorag.config import load_params
from lorag.retrain.train import choose_run, fingerprint
from lorag.training.accelerate_setup import accelerate_config, resolve_precision
from lorag.training.base_model import BaseModelMissing, BaseModelRef
from lorag.training.run_folder import RunFolder, pipeline_run

REPO = Path(__file__).resolve().parents[2]

# --- precision -------------------------------------------------------------------------------------------------

GPU_BF16 = {"mixed_precision": "bf16", "gpu_ids": "0"}
CPU = {"mixed_precision": "no", "use_cpu": True}


@pytest.mark.parametrize(("requested", "config", "cuda", "bf16_ok", "expected"), [
    ("auto", GPU_BF16, True, True, "bf16"),  # the defect: gpu-1 trained in fp32 because precision said fp32
    ("auto", GPU_BF16, True, False, "fp16"),  # a card without bf16 (e.g. T4, V100)
    ("auto", GPU_BF16, False, False, "no"),  # a GPU config on a machine without a GPU
    ("auto", CPU, False, False, "no"),
    ("auto", {**GPU_BF16, "use_cpu": True}, True, True, "no"),
    ("auto", {"mixed_precision": "fp16"}, True, True, "fp16"),
    ("auto", {}, True, True, "no"),
    ("fp32", GPU_BF16, True, True, "no"),  # an explicit value always wins
    ("bf16", CPU, False, False, "bf16"),
    ("fp16", GPU_BF16, True, True, "fp16"),
])
def test_precision_follows_config_and_hardware_unless_set(requested, config, cuda, bf16_ok, expected) -> None:
    assert resolve_precision(requested, config, cuda=cuda, bf16_ok=bf16_ok) == expected


def test_shipped_gpu_config_trains_in_bf16_by_default() -> None:
    params = load_params(REPO / "params.yaml", ["train.accelerate_config=gpu-1"])
    assert params.train.precision == "auto"
    _, config = accelerate_config(params)
    assert resolve_precision(params.train.precision, config, cuda=True, bf16_ok=True) == "bf16"


def test_unknown_mixed_precision_in_a_config_is_an_error() -> None:
    with pytest.raises(ValueError, match="mixed_precision='fp8'.*train.precision"):
        resolve_precision("auto", {"mixed_precision": "fp8"}, cuda=True, bf16_ok=True)


# --- params cross the process boundary as data --------------------------------------------------------------------


def test_params_round_trip_through_the_run_folder(tmp_path: Path) -> None:
    other = tmp_path / "configs" / "other.yaml"
    other.parent.mkdir()
    other.write_text("train:\n  max_steps: 3\n  lora:\n    target_modules: [q_proj]\nexamples:\n  clean_dir: ../ex\n")
    params = load_params(other, ["train.learning_rate=0.01"])
    run = RunFolder(tmp_path / "run")
    run.write_params(params)
    loaded = run.read_params()
    assert loaded == params and loaded.root == params.root == other.parent
    assert loaded.examples.clean_dir == tmp_path / "ex" and loaded.tracking_uri == params.tracking_uri
    assert json.loads(run.params_file.read_text())["params"]["train"]["learning_rate"] == 0.01


# --- the base model reference -------------------------------------------------------------------------------------


def test_base_model_ref_reads_folders_and_hub_ids_one_way(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("train:\n  base_model: .lorag/models/tiny\n  base_model_revision: v1\n")
    local = BaseModelRef.from_params(load_params(tmp_path))
    assert local.is_local and local.local_path == tmp_path / ".lorag/models/tiny" and local.revision is None
    hub = BaseModelRef.from_params(load_params(tmp_path, ["train.base_model=Qwen/Qwen2.5-0.5B-Instruct"]))
    assert not hub.is_local and hub.source == "Qwen/Qwen2.5-0.5B-Instruct" and hub.revision == "v1"
    (tmp_path / "models" / "mine").mkdir(parents=True)  # an existing folder under the project is a folder
    mine = BaseModelRef.from_params(load_params(tmp_path, ["train.base_model=models/mine"]))
    assert mine.local_path == tmp_path / "models" / "mine"


def test_a_base_model_that_cannot_be_loaded_says_which_and_how_to_fix(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("train:\n  base_model: .lorag/models/missing\n")
    with pytest.raises(BaseModelMissing) as local:
        BaseModelRef.from_params(load_params(tmp_path)).load_tokenizer()
    text = str(local.value)
    assert "train.base_model='.lorag/models/missing'" in text and str(tmp_path / ".lorag/models/missing") in text
    assert "lorag build-base-model" in text
    with pytest.raises(BaseModelMissing) as hub:
        BaseModelRef.from_params(load_params(tmp_path, ["train.base_model=nobody/no-such-model"])).load_config()
    assert "hub id 'nobody/no-such-model'" in str(hub.value) and "Hugging Face cache" in str(hub.value)


# --- which run folder a (re-)run trains in ------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "llama"}')
    clean = tmp_path / ".lorag" / "examples-clean"
    clean.mkdir(parents=True)
    (clean / "train.jsonl").write_text('{"id": "a", "instruction": "q", "response": "r"}\n')
    (tmp_path / "params.yaml").write_text("train:\n  base_model: ./model\n")
    return tmp_path


def _unfinished(project: Path, *overrides: str) -> RunFolder:
    return choose_run(load_params(project, list(overrides)))


def test_a_rerun_picks_the_newest_unfinished_run_of_the_same_fingerprint(project: Path) -> None:
    first = _unfinished(project)
    assert first.origin()["finished"] is False and first.path.parent == project / ".lorag" / "train"
    assert choose_run(load_params(project)) == first  # killed before it finished: resumed
    # Knobs that do not change what is learned do not start a new run.
    assert choose_run(load_params(project, ["train.checkpoint_every=5", "train.threads_per_process=2"])) == first
    changed = _unfinished(project, "train.learning_rate=0.1")
    assert changed != first
    first.mark_finished()
    assert choose_run(load_params(project)) not in (first, changed)  # finished runs are never resumed
    (project / ".lorag" / "examples-clean" / "train.jsonl").write_text('{"id": "b", "instruction": "q", "response": "s"}\n')
    assert choose_run(load_params(project, ["train.learning_rate=0.1"])) != changed  # the examples changed


def test_a_run_dir_of_other_params_is_refused_naming_what_changed(project: Path) -> None:
    run = _unfinished(project)
    with pytest.raises(ValueError, match=r"changed: train\.max_steps.*new --run-dir"):
        choose_run(load_params(project, ["train.max_steps=3"]), run.path)
    assert choose_run(load_params(project), run.path) == run
    run.mark_finished()
    with pytest.raises(ValueError, match="finished run"):
        choose_run(load_params(project), run.path)


def test_the_pipeline_folder_resumes_only_its_own_unfinished_run(project: Path) -> None:
    params = load_params(project)
    run = choose_run(params, pipeline=True)
    assert run == pipeline_run(params)
    (run.checkpoints / "step-2").mkdir(parents=True)
    assert choose_run(params, pipeline=True) == run and (run.checkpoints / "step-2").is_dir()
    assert choose_run(params) != run  # ad-hoc runs never pick up the DVC pipeline's folder
    run.mark_finished()
    run.summary_file.unlink(missing_ok=True)  # DVC deletes a stage's outputs before re-running it
    assert choose_run(params, pipeline=True) == run and not run.checkpoints.exists()  # fresh
    assert fingerprint(params)[0] == run.origin()["fingerprint"]


def test_a_run_being_trained_is_never_picked_or_entered(project: Path) -> None:
    import subprocess
    import sys

    run = _unfinished(project)
    code = ("import sys, time\nfrom filelock import FileLock\nlock = FileLock(sys.argv[1], thread_local=False)\n"
            "lock.acquire()\nprint('held', flush=True)\ntime.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run.path / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"  # another launcher is training in `run`
        assert run.in_progress
        assert choose_run(load_params(project)) != run
        with pytest.raises(ValueError, match="another process"):
            choose_run(load_params(project), run.path)
    finally:
        holder.kill()
        holder.wait()
    assert not run.in_progress  # the lock dies with its holder, SIGKILL included: a crash never blocks a resume
    assert choose_run(load_params(project), run.path) == run


# --- the one citation format --------------------------------------------------------------------------------------


def test_search_results_and_training_contexts_cite_the_same_way() -> None:
    from lorag.answer.format import Passage, citation, format_context, parse_context
    from lorag.index.protocol import SearchHit
    from lorag.retrieval.search import citation as search_citation

    import dataclasses

    fields = {f.name: None for f in dataclasses.fields(SearchHit)}
    hit = SearchHit(**{**fields, "doc_id": "hives/a.md", "heading": "Hives > Summer", "text": "t", "score": 1.0})
    assert search_citation(hit) == citation(hit) == "hives/a.md > Hives > Summer"
    assert parse_context(format_context([hit, Passage("b.md", "", "x")])) == {1: citation(hit), 2: "b.md"}
