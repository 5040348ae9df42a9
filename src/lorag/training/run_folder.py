"""The training run folder: its layout, and the one place that writes and reads each file in it.

    run.json            what the run was made from (fingerprint of params, examples, base model) and whether it
                        finished; how a re-run finds the unfinished run to resume
    params.json         the validated Params the training process loads (data, not a path plus overrides)
    metrics.jsonl       one JSON event per line from rank 0 (start, step, checkpoint, end)
    checkpoints/step-N  crash-safe checkpoints (lorag.training.checkpoints)
    adapter/            the trained LoRA adapter (safetensors), written last
    summary.json        written once training completed (the launcher's "it finished")
    mlflow_run.json     the MLflow training run recorded for it (by the caller, after the process exited 0)
    registered.json     the registry version made from it
    debug/              per-rank debug records (tests)
    .lock               held by the launcher while training runs: a run in progress is never picked to resume

The training process (lorag.training.train) writes its files through these helpers, and everything else
(launcher, retrain, tracking, evaluation, stages) reads them through the same ones.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params

PIPELINE_RUN = "pipeline"  # the folder the DVC stages train into (dvc.yaml names the same path)


def _now() -> str:
    """UTC time to the microsecond: orders two runs started in the same second."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically: a reader (or a re-run after a kill) never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


class RunInProgress(RuntimeError):
    """Another process is training in this run folder right now."""


@dataclass(frozen=True)
class RunFolder:
    """One training run's folder. Cheap to build; nothing is created until something is written."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).resolve())

    # ------------------------------------------------------------------ layout
    @property
    def run_file(self) -> Path:
        return self.path / "run.json"

    @property
    def params_file(self) -> Path:
        return self.path / "params.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def summary_file(self) -> Path:
        return self.path / "summary.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.path / "adapter"

    @property
    def mlflow_file(self) -> Path:
        return self.path / "mlflow_run.json"

    @property
    def registered_file(self) -> Path:
        return self.path / "registered.json"

    @property
    def debug(self) -> Path:
        return self.path / "debug"

    # ------------------------------------------------------------------ one training at a time per folder
    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the folder's lock while training runs in it; RunInProgress when another process holds it.

        An OS file lock: it is released when the holder dies, even by SIGKILL, so a crash never blocks a resume.
        """
        from filelock import FileLock, Timeout

        self.path.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path / ".lock"), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise RunInProgress(f"{self.path} is being trained by another process right now; wait for it to "
                                "finish, or train elsewhere with --run-dir.") from None
        try:
            yield
        finally:
            lock.release()

    @property
    def in_progress(self) -> bool:
        try:
            with self.hold():
                return False
        except RunInProgress:
            return True

    # ------------------------------------------------------------------ params (crosses the process boundary)
    def write_params(self, params: Params) -> Path:
        """The validated Params as JSON. `root` is excluded from the model dump, so it travels beside it; every
        path field is already absolute after load_params, so the training process needs no params.yaml."""
        self.path.mkdir(parents=True, exist_ok=True)
        return _write_json(self.params_file, {"root": str(params.root), "params": params.model_dump(mode="json")})

    def read_params(self) -> Params:
        from lorag.config import Params

        if not self.params_file.is_file():
            raise FileNotFoundError(f"{self.params_file}: no params for this run; start it with `lorag train`.")
        raw = json.loads(self.params_file.read_text(encoding="utf-8"))
        return Params.model_validate({**raw["params"], "root": raw["root"]})

    # ------------------------------------------------------------------ what the run was made from
    def write_origin(self, fingerprint: str, parts: dict[str, Any]) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        started = _now()
        return _write_json(self.run_file, {"fingerprint": fingerprint, "parts": parts, "started_at": started,
                                           "finished": False})

    def origin(self) -> dict[str, Any] | None:
        if not self.run_file.is_file():
            return None
        return json.loads(self.run_file.read_text(encoding="utf-8"))

    def mark_finished(self) -> None:
        """Called once summary.json is written. Kept apart from summary.json: DVC deletes a stage's outputs
        (summary.json among them) before re-running it, and that must not make a finished run look resumable."""
        origin = self.origin() or {}
        _write_json(self.run_file, {**origin, "finished": True,
                                    "finished_at": _now()})

    @property
    def finished(self) -> bool:
        origin = self.origin()
        return bool(origin and origin.get("finished")) or self.summary_file.is_file()

    # ------------------------------------------------------------------ results
    def write_summary(self, summary: dict[str, Any]) -> Path:
        return _write_json(self.summary_file, summary)

    def read_summary(self) -> dict[str, Any]:
        if not self.summary_file.is_file():
            raise FileNotFoundError(f"{self.summary_file}: this run has not completed. Train (or resume) it first.")
        return json.loads(self.summary_file.read_text(encoding="utf-8"))

    def append_event(self, line: str) -> None:
        with open(self.metrics_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """Step records of metrics.jsonl; after a resume, the re-run steps replace those of the killed run."""
        by_step: dict[int, dict[str, Any]] = {}
        if self.metrics_file.is_file():
            for line in self.metrics_file.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if record.get("event") == "step":
                    by_step[int(record["step"])] = record
        return [by_step[k] for k in sorted(by_step)]

    def require_adapter(self) -> Path:
        if not (self.adapter / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{self.adapter}: no trained adapter. Train first (lorag train, or the train stage).")
        return self.adapter

    def write_mlflow_run(self, run_id: str, tracking_uri: str) -> Path:
        return _write_json(self.mlflow_file, {"run_id": run_id, "tracking_uri": tracking_uri})

    def read_mlflow_run(self) -> str:
        """The MLflow training run id recorded for this run; a clear error when there is none."""
        if not self.mlflow_file.is_file():
            raise FileNotFoundError(f"{self.mlflow_file}: no recorded training run here. Run the train stage first.")
        run_id = json.loads(self.mlflow_file.read_text(encoding="utf-8")).get("run_id")
        if not run_id:
            raise ValueError(f"{self.mlflow_file}: the training run was not recorded in MLflow; train it again.")
        return str(run_id)

    def write_registered(self, record: dict[str, Any]) -> Path:
        return _write_json(self.registered_file, record)


def pipeline_run(params: Params) -> RunFolder:
    """The run folder the DVC stages train into and read from."""
    return RunFolder(params.train.output_dir / PIPELINE_RUN)


def new_run(params: Params, prefix: str = "run") -> RunFolder:
    """A fresh folder under train.output_dir for ad-hoc runs (CLI, flow): `run-20261121T143000Z-3f2a`."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return RunFolder(params.train.output_dir / f"{prefix}-{stamp}-{secrets.token_hex(2)}")


def unfinished_runs(params: Params, fingerprint: str) -> list[RunFolder]:
    """Ad-hoc runs under train.output_dir made from `fingerprint` that never finished and are not training
    right now, newest first.

    The DVC pipeline's folder is left out: it belongs to `dvc repro`, which resumes it itself.
    """
    root = params.train.output_dir
    found: list[tuple[str, RunFolder]] = []
    for path in root.iterdir() if root.is_dir() else []:
        folder = RunFolder(path)
        origin = folder.origin() if path.is_dir() and path.name != PIPELINE_RUN else None
        if origin and origin.get("fingerprint") == fingerprint and not folder.finished and not folder.in_progress:
            found.append((str(origin.get("started_at", "")), folder))
    return [folder for _, folder in sorted(found, key=lambda item: (item[0], item[1].path.name), reverse=True)]
