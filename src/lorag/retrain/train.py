"""Train an adapter: pick the run folder, launch training under accelerate, wait, read the result; record it.

Which folder a run trains in decides whether a crash costs the work done so far. Every run folder records what
it was made from (`fingerprint`: the training-relevant params, the examples' content hash and the base model).
A re-run made from the same things resumes the newest unfinished run from its last checkpoint; anything
changed starts a fresh run. The DVC pipeline keeps one folder (`train.output_dir/pipeline`) and resumes it on the
same rule; `lorag train --run-dir` resumes the folder given and refuses one made from something else.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorag.training.run_folder import RunFolder, new_run, pipeline_run, unfinished_runs

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.training.launcher import TrainResult

# Knobs that do not change what is learned (where it is written, how often it is saved, CPU threads) or that are
# covered by the base model's own fingerprint: changing them must not throw away a half-done run.
_NOT_LEARNED = frozenset({"output_dir", "checkpoint_every", "threads_per_process", "tiny_model", "base_model",
                          "base_model_revision"})


def fingerprint(params: Params) -> tuple[str, dict[str, Any]]:
    """(digest, parts) of what a run learns from: training params, the examples' content, the base model."""
    from lorag.training.base_model import BaseModelRef
    from lorag.training.data import train_examples_path

    train = {k: v for k, v in params.train.model_dump(mode="json").items() if k not in _NOT_LEARNED}
    examples = train_examples_path(params)
    parts = {"train": train, "examples_sha256": hashlib.sha256(examples.read_bytes()).hexdigest(),
             "base_model": BaseModelRef.from_params(params).fingerprint()}
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return digest, parts


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out: list[str] = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and prefix == "":
            out += _differences(a, b, f"{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def choose_run(params: Params, run_dir: Path | None = None, pipeline: bool = False) -> RunFolder:
    """The folder to train in: `run_dir` if given, the pipeline's folder, or the newest unfinished run made from
    the same fingerprint (else a new folder). A fresh folder gets its origin (run.json) written here."""
    digest, parts = fingerprint(params)
    if run_dir is not None:
        run = RunFolder(run_dir)
        origin = run.origin()
        if origin is not None and origin.get("fingerprint") != digest:
            changed = ", ".join(_differences(origin.get("parts", {}), parts)) or "unknown"
            raise ValueError(f"{run.path} was started from other params or data (changed: {changed}): it cannot be "
                             "resumed. Pass a new --run-dir, or none to let lorag pick.")
        if run.finished:
            raise ValueError(f"{run.path} holds a finished run. Pass a new --run-dir, or none to let lorag pick.")
        if run.in_progress:
            raise ValueError(f"{run.path} is being trained by another process right now; wait for it to finish.")
        if origin is not None:
            return run
    elif pipeline:
        run = pipeline_run(params)
        if run.in_progress:
            raise ValueError(f"{run.path} is being trained by another process right now; wait for it to finish.")
        origin = run.origin()
        if origin is not None and origin.get("fingerprint") == digest and not run.finished:
            return run
        if run.path.exists():
            shutil.rmtree(run.path)  # made from something else, or finished: DVC re-runs the stage to retrain
    else:
        found = unfinished_runs(params, digest)
        if found:
            return found[0]
        run = new_run(params)
    run.write_origin(digest, parts)
    return run


def train(params: Params, run_dir: Path | None = None, *, pipeline: bool = False,
          on_line: Callable[[str], None] | None = None) -> TrainResult:
    """Train (or resume) an adapter and wait for it; nothing is recorded in MLflow (see `record`).

    `summary["resumed_from_step"]` says whether an unfinished run was continued.
    """
    from lorag.training.launcher import launch_training, preflight

    preflight(params)  # bad params or missing inputs fail before a folder is picked or made
    return launch_training(params, choose_run(params, run_dir, pipeline), on_line=on_line)


def record(params: Params, result: TrainResult) -> str:
    """Record a completed run in MLflow (lorag.tracking.training) and note the run id in its folder."""
    from lorag.tracking.training import record_training

    run_id = record_training(params, result)
    result.run.write_mlflow_run(run_id, params.tracking_uri)
    return run_id
