"""DVC stage: train the LoRA adapter under accelerate (a subprocess) and record the run in MLflow.

    python -m lorag.stages.train --params params.yaml

Trains in `train.output_dir/pipeline`. A stage killed half-way resumes from its last checkpoint when re-run with
the same params and data; anything changed starts it fresh (lorag.retrain.train). Writes `mlflow_run.json`
(the training run id) for the register stage.
"""

from __future__ import annotations

from lorag.config import load_params
from lorag.stages import parse_stage_args


def print_step(line: str) -> None:
    from lorag.training.launcher import parse_event

    event = parse_event(line)
    if event and event["event"] == "start" and event.get("resumed_from_step"):
        print(f"resuming from step {event['resumed_from_step']}", flush=True)
    elif event and event["event"] == "step":
        print(f"step {event['step']}/{event['total_steps']} loss {event['loss']:.4f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    from lorag.retrain.run import run_retrain

    args = parse_stage_args(__doc__, "train.max_steps=10", argv)
    done = run_retrain(load_params(args.params, args.overrides), pipeline=True, on_line=print_step)
    print(f"adapter trained in {done.trained.adapter_dir}")


if __name__ == "__main__":
    main()
