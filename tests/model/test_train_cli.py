"""`lorag train` as a user runs it (a real subprocess): another params file, and a re-run after a SIGKILL.

Both are defects found by testing: `--params other.yaml` failed because the training process re-read
params.yaml, and a re-run after a crash started again from step 0 in a new run folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # each case launches accelerate (several seconds per run on 2 shared cores)

TRAIN = {"accelerate_config": "cpu-1proc", "max_steps": 6, "checkpoint_every": 2, "batch_size": 2}


def _lorag(*args: str, env: dict[str, str] | None = None) -> list[str]:
    exe = Path(sys.executable).with_name("lorag")
    return [str(exe), *args] if exe.exists() else [sys.executable, "-m", "lorag.cli", *args]


def _train_json(params_file: Path, *extra: str) -> dict:
    proc = subprocess.run(_lorag("train", "--params", str(params_file), "--json", *extra), capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_train_with_a_params_file_in_another_folder(tiny_model_dir: Path, tmp_path: Path, project_factory) -> None:
    root = project_factory(tmp_path / "project", tiny_model_dir, train=TRAIN)
    # A second params file in another folder: its relative paths resolve against that folder.
    other = root / "configs" / "other.yaml"
    other.parent.mkdir()
    settings = {**yaml.safe_load((root / "params.yaml").read_text())["train"], "max_steps": 2,
                "output_dir": "../.lorag/train-other"}
    other.write_text(yaml.safe_dump({"train": settings, "examples": {"clean_dir": "../.lorag/examples-clean"},
                                     "mlflow": {"tracking_uri": "sqlite:///../.lorag/mlflow.db"}}))
    summary = _train_json(other)
    assert summary["steps"] == 2  # other.yaml's value, not params.yaml's 6
    assert Path(summary["run_dir"]).parent == root / ".lorag" / "train-other"


def _descendants(pid: int) -> list:
    import psutil

    return psutil.Process(pid).children(recursive=True)


def _complete_checkpoints(output_dir: Path) -> list[Path]:
    return [p for p in output_dir.glob("*/checkpoints/step-*") if (p / "trainer_state.json").is_file()]


def test_rerun_after_a_killed_training_resumes_it(tiny_model_dir: Path, tmp_path: Path, project_factory) -> None:
    import psutil

    root = project_factory(tmp_path / "project", tiny_model_dir, train=TRAIN)
    params_file = root / "params.yaml"
    output_dir = root / ".lorag" / "train"
    env = {**os.environ, "LORAG_TRAIN_DEBUG_STEP_SLEEP": "1.0"}  # slow steps: the kill lands mid-run
    proc = subprocess.Popen(_lorag("train", "--params", str(params_file)), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not _complete_checkpoints(output_dir):
            assert proc.poll() is None, "lorag train exited before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        children = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # the user's process dies; its training processes must follow
        proc.wait()
        _, alive = psutil.wait_procs(children, timeout=120)
        assert not alive, f"training processes outlived a killed `lorag train`: {alive}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    (killed,) = {p.parents[1] for p in _complete_checkpoints(output_dir)}
    step = max(int(p.name.removeprefix("step-")) for p in _complete_checkpoints(output_dir))
    assert step < TRAIN["max_steps"] and not (killed / "summary.json").exists()

    resumed = _train_json(params_file)
    assert Path(resumed["run_dir"]) == killed
    assert resumed["resumed_from_step"] == step and resumed["steps"] == TRAIN["max_steps"]

    # Changed params: a fresh run in a new folder; the finished run is never resumed either.
    fresh = _train_json(params_file, "--set", "train.learning_rate=0.001")
    assert Path(fresh["run_dir"]) != killed and fresh["resumed_from_step"] is None
    again = _train_json(params_file)
    assert Path(again["run_dir"]) not in (killed, Path(fresh["run_dir"])) and again["resumed_from_step"] is None


def test_the_train_stage_resumes_its_killed_run(tiny_model_dir: Path, tmp_path: Path, project_factory) -> None:
    """`dvc repro` re-runs `python -m lorag.stages.train` after a crash: it continues the pipeline's run."""
    root = project_factory(tmp_path / "project", tiny_model_dir, train=TRAIN)
    stage = [sys.executable, "-m", "lorag.stages.train", "--params", str(root / "params.yaml")]
    pipeline = root / ".lorag" / "train" / "pipeline"
    env = {**os.environ, "LORAG_TRAIN_DEBUG_STEP_SLEEP": "1.0"}
    proc = subprocess.Popen(stage, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not _complete_checkpoints(pipeline.parent):
            assert proc.poll() is None, "the train stage exited before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        children = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        import psutil

        psutil.wait_procs(children, timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    step = max(int(p.name.removeprefix("step-")) for p in _complete_checkpoints(pipeline.parent))
    rerun = subprocess.run(stage, capture_output=True, text=True, timeout=900, check=False)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert f"resuming from step {step}" in rerun.stdout
    summary = json.loads((pipeline / "summary.json").read_text())
    assert summary["resumed_from_step"] == step and summary["steps"] == TRAIN["max_steps"]
