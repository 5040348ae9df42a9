"""Start `lorag.training.train` under `accelerate launch` as a subprocess and stream its output.

Checks what can be checked cheaply first (accelerate config exists, examples exist, LoRA targets are in the model)
so bad params fail before any process starts. The subprocess gets its own process group: killing the caller's
run kills every rank. A nonzero exit raises TrainingFailed with the tail of the output.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorag.config import Params, load_params
from lorag.training.train import EXPECTED_WORLD_SIZE_ENV

TAIL_LINES = 40


class TrainingFailed(RuntimeError):
    """The training subprocess exited nonzero; `tail` holds its last output lines."""

    def __init__(self, returncode: int, tail: list[str]) -> None:
        self.returncode, self.tail = returncode, tail
        super().__init__(f"training exited with code {returncode}; last lines:\n" + "\n".join(tail))


@dataclass
class TrainResult:
    run_dir: Path
    adapter_dir: Path
    summary: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    mlflow_run_id: str | None = None


def accelerate_dir(params: Params) -> Path:
    return params.root / "infra" / "accelerate"


def accelerate_config(params: Params) -> tuple[Path, dict[str, Any]]:
    """(path, contents) of infra/accelerate/<train.accelerate_config>.yaml; unknown names list the choices."""
    import yaml

    folder = accelerate_dir(params)
    path = folder / f"{params.train.accelerate_config}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        raise ValueError(
            f"train.accelerate_config={params.train.accelerate_config!r}: no {path}. "
            f"Available: {', '.join(known) or f'none (is {folder} missing?)'}."
        )
    return path, yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def preflight(params: Params) -> None:
    """Fail before launching: missing examples, missing base model, LoRA targets the model does not have."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from lorag.training.data import train_examples_path
    from lorag.training.lora import check_target_modules, resolve_base_model

    _, conf = accelerate_config(params)
    ds_accum = (conf.get("deepspeed_config") or {}).get("gradient_accumulation_steps")
    if ds_accum is not None and int(ds_accum) != params.train.grad_accum:
        raise ValueError(
            f"infra/accelerate/{params.train.accelerate_config}.yaml sets deepspeed gradient_accumulation_steps="
            f"{ds_accum} but train.grad_accum={params.train.grad_accum}: make them equal."
        )
    train_file = train_examples_path(params)
    if not train_file.is_file() or train_file.stat().st_size == 0:
        raise FileNotFoundError(
            f"{train_file}: no validated training examples. Validate them first: "
            "`python -m lorag.stages.validate_examples --params params.yaml` (or run the pipeline: `dvc repro`)."
        )
    source = resolve_base_model(params)
    try:
        config = AutoConfig.from_pretrained(source, revision=params.train.base_model_revision)
    except OSError as exc:
        raise FileNotFoundError(
            f"train.base_model={params.train.base_model!r}: no model config found ({exc}). Build the tiny "
            "model (lorag.training.tiny_model.build_tiny_base_model) or point train.base_model at a local "
            "folder or a cached hub model."
        ) from exc
    with torch.device("meta"):  # module names only: no weights are allocated or read
        skeleton = AutoModelForCausalLM.from_config(config)
    check_target_modules(skeleton, params.train.lora)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_command(params: Params, run_dir: Path, overrides: list[str]) -> tuple[list[str], dict[str, str]]:
    """(argv, env) of the accelerate launch; the child rebuilds the same Params from params.yaml + overrides."""
    path, conf = accelerate_config(params)
    world = int(conf.get("num_processes", 1))
    accelerate_bin = Path(sys.executable).with_name("accelerate")
    launch = [str(accelerate_bin), "launch"] if accelerate_bin.exists() else [
        sys.executable, "-m", "accelerate.commands.launch"]
    argv = [*launch, "--config_file", str(path)]
    if int(conf.get("num_machines", 1)) == 1 and world > 1 and "main_process_port" not in conf:
        # Two local runs (tests, two users) would otherwise both bind the default port 29500.
        argv += ["--main_process_port", str(_free_port())]
    argv += ["-m", "lorag.training.train", "--params", str(params.root / "params.yaml"), "--run-dir", str(run_dir)]
    for item in overrides:
        argv += ["--set", item]
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(params.train.threads_per_process)
    env[EXPECTED_WORLD_SIZE_ENV] = str(world)
    env["PYTHONUNBUFFERED"] = "1"
    if conf.get("use_cpu"):
        env["ACCELERATE_USE_CPU"] = "true"
    return argv, env


def _check_same_params(params: Params, overrides: list[str]) -> None:
    rebuilt = load_params(params.root / "params.yaml", overrides)
    if rebuilt != params:
        raise ValueError(
            f"the Params passed to launch_training differ from {params.root / 'params.yaml'} + overrides "
            f"{overrides}: the training process would train something else. Load them with "
            "load_params(path, overrides) and pass the same overrides."
        )


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Step records of metrics.jsonl; after a resume, the re-run steps replace those of the killed run."""
    path = Path(run_dir) / "metrics.jsonl"
    by_step: dict[int, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("event") == "step":
                by_step[int(record["step"])] = record
    return [by_step[k] for k in sorted(by_step)]


def parse_event(line: str) -> dict[str, Any] | None:
    """The JSON event on a line of training output, or None for other output (warnings, tracebacks)."""
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "event" in record else None


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM lets torchrun stop its ranks; SIGKILL if it does not within 10 s (the ranks die with it)."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def launch_training(
    params: Params,
    run_dir: Path,
    overrides: list[str],
    on_line: Callable[[str], None] | None = None,
    track: bool = True,
) -> TrainResult:
    """Run (or resume) training into run_dir under accelerate; returns the result once the process exits 0.

    `params` must be what `load_params(params.root / "params.yaml", overrides)` gives (the CLI does this);
    `on_line` receives each output line as it arrives (use `parse_event` for step progress). With `track`, a
    completed run is logged to MLflow (train_experiment); a failed one raises before anything is logged.
    """
    _check_same_params(params, overrides)
    preflight(params)
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    argv, env = build_command(params, run_dir, overrides)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    proc = subprocess.Popen(argv, env=env, cwd=params.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, start_new_session=True)
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            tail.append(line)
            if on_line is not None:
                on_line(line)
        returncode = proc.wait()
    except BaseException:
        _stop(proc)  # the caller was interrupted: take every rank down with it
        raise
    if returncode != 0:
        raise TrainingFailed(returncode, list(tail))
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    result = TrainResult(run_dir, Path(summary["adapter_dir"]), summary, read_metrics(run_dir))
    if track:
        from lorag.registry.runs import record_training

        result.mlflow_run_id = record_training(params, result)
    return result
