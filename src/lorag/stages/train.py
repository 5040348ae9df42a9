"""DVC stage: train the LoRA adapter under accelerate (a subprocess) and record the run in MLflow.

    python -m lorag.stages.train --params params.yaml

The pipeline's run lives in `train.output_dir/pipeline` and always starts fresh: a stage re-runs because a
param or the data changed, so checkpoints of the previous run must not be resumed (resume a killed run with
`lorag train --run-dir`). Writes `mlflow_run.json` (the training run id) for the register stage.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lorag.stages import parse_stage_args
from lorag.config import Params, load_params

PIPELINE_RUN = "pipeline"
RUN_RECORD = "mlflow_run.json"


def pipeline_run_dir(params: Params) -> Path:
    """The run folder the DVC stages train into and read from (dvc.yaml names the same path)."""
    return params.path(params.train.output_dir) / PIPELINE_RUN


def new_run_dir(params: Params, prefix: str = "run") -> Path:
    """A fresh run folder under train.output_dir for ad-hoc runs (CLI, flow): `run-20261121T143000Z-3f2a`."""
    import secrets
    import time

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return params.path(params.train.output_dir) / f"{prefix}-{stamp}-{secrets.token_hex(2)}"


def write_run_record(run_dir: Path, run_id: str | None, tracking_uri: str) -> Path:
    path = Path(run_dir) / RUN_RECORD
    path.write_text(json.dumps({"run_id": run_id, "tracking_uri": tracking_uri}, indent=2) + "\n", encoding="utf-8")
    return path


def read_run_record(run_dir: Path) -> str:
    """The MLflow run id the train stage recorded; a clear error when training has not completed."""
    path = Path(run_dir) / RUN_RECORD
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no completed training run here. Run the train stage first.")
    run_id = json.loads(path.read_text(encoding="utf-8")).get("run_id")
    if not run_id:
        raise ValueError(f"{path}: training was not tracked in MLflow, so it cannot be registered.")
    return str(run_id)


def run(params: Params, overrides: list[str]) -> Path:
    """Fresh training into the pipeline run dir, tracked in MLflow; returns the run dir."""
    from lorag.training.launcher import launch_training, parse_event

    run_dir = pipeline_run_dir(params)
    if run_dir.exists():
        shutil.rmtree(run_dir)

    def show(line: str) -> None:
        event = parse_event(line)
        if event and event["event"] == "step":
            print(f"step {event['step']}/{event['total_steps']} loss {event['loss']:.4f}", flush=True)

    result = launch_training(params, run_dir, overrides, on_line=show, track=True)
    write_run_record(run_dir, result.mlflow_run_id, params.tracking_uri)
    return run_dir


def main(argv: list[str] | None = None) -> None:
    args = parse_stage_args(__doc__, "train.max_steps=10", argv)
    params = load_params(args.params, args.overrides)
    print(f"adapter trained in {run(params, args.overrides) / 'adapter'}")


if __name__ == "__main__":
    main()
