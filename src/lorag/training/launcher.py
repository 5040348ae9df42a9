"""Start `lorag.training.train` under `accelerate launch` as a subprocess and stream its output.

Checks what can be checked cheaply first (accelerate config exists, examples exist, LoRA targets are in the model)
so bad params fail before any process starts. The validated Params go to the run folder as JSON
(`RunFolder.write_params`) and the training process loads exactly those: no params file is re-read and no
override re-applied on the other side. The subprocess gets its own process group: killing the caller's run kills
every rank. A nonzero exit raises TrainingFailed with the tail of the output. Nothing here talks to MLflow: the
caller records a completed run (lorag.retrain).
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

from lorag.config import Params
from lorag.training.accelerate_setup import accelerate_config
from lorag.training.run_folder import RunFolder
from lorag.training.train import EXPECTED_WORLD_SIZE_ENV

TAIL_LINES = 40
# `accelerate launch` runs in a session of its own (so Ctrl-C and _stop reach every rank), which also means it
# would outlive a launcher killed by SIGKILL and keep training into a folder the next run resumes. This prefix
# makes the kernel kill it when the launcher dies (PR_SET_PDEATHSIG, kept across exec); the ranks follow it
# (lorag.training.train.die_with_parent). Linux only: elsewhere the prefix just runs the command.
_DIE_WITH_LAUNCHER = (
    "import os, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    import ctypes, signal\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "    if os.getppid() != int(sys.argv[1]): os._exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])"
)


class TrainingFailed(RuntimeError):
    """The training subprocess exited nonzero; `tail` holds its last output lines."""

    def __init__(self, returncode: int, tail: list[str]) -> None:
        self.returncode, self.tail = returncode, tail
        super().__init__(f"training exited with code {returncode}; last lines:\n" + "\n".join(tail))


@dataclass
class TrainResult:
    """A completed training run, read back from its folder."""

    run: RunFolder
    summary: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        return self.run.path

    @property
    def adapter_dir(self) -> Path:
        return self.run.adapter

    @classmethod
    def read(cls, run: RunFolder) -> TrainResult:
        return cls(run, run.read_summary(), run.read_metrics())


def preflight(params: Params) -> None:
    """Fail before launching: missing examples, missing base model, LoRA targets the model does not have."""
    import torch
    from transformers import AutoModelForCausalLM

    from lorag.training.base_model import BaseModelRef
    from lorag.training.data import train_examples_path
    from lorag.training.lora import check_target_modules

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
    config = BaseModelRef.from_params(params).load_config()
    with torch.device("meta"):  # module names only: no weights are allocated or read
        skeleton = AutoModelForCausalLM.from_config(config)
    check_target_modules(skeleton, params.train.lora)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_command(params: Params, run: RunFolder) -> tuple[list[str], dict[str, str]]:
    """(argv, env) of the accelerate launch; the child loads the Params from run/params.json."""
    path, conf = accelerate_config(params)
    world = int(conf.get("num_processes", 1))
    accelerate_bin = Path(sys.executable).with_name("accelerate")
    launch = [str(accelerate_bin), "launch"] if accelerate_bin.exists() else [
        sys.executable, "-m", "accelerate.commands.launch"]
    argv = [sys.executable, "-c", _DIE_WITH_LAUNCHER, str(os.getpid()), *launch, "--config_file", str(path)]
    if int(conf.get("num_machines", 1)) == 1 and world > 1 and "main_process_port" not in conf:
        # Two local runs (tests, two users) would otherwise both bind the default port 29500.
        argv += ["--main_process_port", str(_free_port())]
    argv += ["-m", "lorag.training.train", "--run-dir", str(run.path)]
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(params.train.threads_per_process)
    env[EXPECTED_WORLD_SIZE_ENV] = str(world)
    env["PYTHONUNBUFFERED"] = "1"
    if conf.get("use_cpu"):
        env["ACCELERATE_USE_CPU"] = "true"
    return argv, env


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


def launch_training(params: Params, run: RunFolder | Path,
                    on_line: Callable[[str], None] | None = None) -> TrainResult:
    """Run (or resume) training into `run` under accelerate; returns the result once the process exits 0.

    `on_line` receives each output line as it arrives (use `parse_event` for step progress). An existing run
    folder resumes from its last complete checkpoint (lorag.retrain decides which folder to use).
    """
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    preflight(params)
    with run.hold():  # one training per folder: a second launcher on it fails instead of interleaving steps
        run.write_params(params)
        argv, env = build_command(params, run)
        returncode, tail = _stream(subprocess.Popen(
            argv, env=env, cwd=params.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            start_new_session=True), on_line)
    if returncode != 0:
        raise TrainingFailed(returncode, tail)
    return TrainResult.read(run)


def _stream(proc: subprocess.Popen[str], on_line: Callable[[str], None] | None) -> tuple[int, list[str]]:
    """Feed the process's output lines to on_line until it exits; (exit code, last lines)."""
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            tail.append(line)
            if on_line is not None:
                on_line(line)
        return proc.wait(), list(tail)
    except BaseException:
        _stop(proc)  # the caller was interrupted: take every rank down with it
        raise
