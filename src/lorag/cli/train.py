"""`lorag train` and `lorag build-base-model`: the behavior track from the command line.

Registered on the app in lorag.cli; each command makes one call into lorag.retrain. Training runs as an
`accelerate launch` subprocess; its JSON step lines feed a rich progress bar. Ctrl-C stops every rank; a failed
or interrupted run records and registers nothing, and the next `lorag train` resumes it.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from lorag.cli.common import ParamsOpt, SetOpt, cli_params, fail


class _StepBar:
    """Feeds `launcher.parse_event` lines into a rich progress bar (created at the "start" event)."""

    def __init__(self, progress: Any) -> None:
        self.progress, self.task = progress, None

    def __call__(self, line: str) -> None:
        from lorag.training.launcher import parse_event

        event = parse_event(line)
        if event is None:
            return
        if event["event"] == "start":
            done = event.get("resumed_from_step") or 0
            self.task = self.progress.add_task("training", total=event["total_steps"], completed=done, loss="")
        elif event["event"] == "step" and self.task is not None:
            self.progress.update(self.task, completed=event["step"],
                                 loss=f"loss {event['loss']:.4f}  {event['tokens_per_s']:.0f} tok/s")


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), console=Console(stderr=True))


def train_cmd(
    params_path: ParamsOpt = None,
    overrides: SetOpt = None,
    run_dir: Annotated[Optional[Path], typer.Option(
        "--run-dir", help="train in this folder, resuming it from its last checkpoint (default: resume the newest "
        "unfinished run made from the same params and data, else a new train.output_dir/run-<time>)")] = None,
    register: Annotated[bool, typer.Option(
        "--register", help="then evaluate on the eval split and register the adapter as the `challenger`")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Train a LoRA adapter on the validated examples under accelerate (CPU or GPU, see train.accelerate_config).

    The completed run is recorded in MLflow (mlflow.train_experiment). A re-run after a crash resumes the
    unfinished run from its last checkpoint; changed params or examples start a fresh run.

    Examples:
      lorag train
      lorag train --set train.max_steps=20 --set train.accelerate_config=cpu-1proc
      lorag train --params other.yaml
      lorag train --run-dir .lorag/train/run-x      (resumes that run)
      lorag train --register                        (then evaluates and registers)
    """
    from lorag.retrain.run import run_retrain
    from lorag.training.launcher import TrainingFailed

    params = cli_params(params_path, overrides)
    try:
        # Libraries (DVC, MLflow) print to stdout; keep stdout for our own output so --json stays parseable.
        with contextlib.redirect_stdout(sys.stderr), _progress() as progress:
            done = run_retrain(params, run_dir, register=register, on_line=_StepBar(progress))
    except (TrainingFailed, FileNotFoundError, ValueError) as exc:
        fail(exc)
    _show(done.summary(), as_json)


def _show(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    from lorag.console import output_console

    console = output_console()
    for key, value in summary.items():
        if key == "eval" and isinstance(value, dict):
            value = ", ".join(f"{k} {v:.4g}" for k, v in value.items() if k.startswith("adapter.") or k == "loss_delta")
        console.print(f"[bold]{key}[/bold]: {value}", highlight=False)


def build_base_model_cmd(params_path: ParamsOpt = None, overrides: SetOpt = None) -> None:
    """Build the tiny demo base model at train.base_model (random weights, tokenizer trained on the sample docs).

    A no-op when train.base_model names your own model (a hub id or a folder lorag did not build).

    Examples:
      lorag build-base-model
      lorag build-base-model --set train.tiny_model.hidden_size=128
    """
    from lorag.retrain.base_model import build_base_model

    params = cli_params(params_path, overrides)
    try:
        built = build_base_model(params)
    except (FileNotFoundError, ValueError) as exc:
        fail(exc)
    if built is None:
        typer.echo(f"train.base_model={params.train.base_model!r} is not a lorag demo model: nothing to build")
    else:
        typer.echo(f"demo base model built in {built}")
