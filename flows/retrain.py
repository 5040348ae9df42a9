"""Behavior track as a Prefect flow: snapshot examples -> validate -> train (accelerate) -> evaluate -> register.

Wiring only: every task calls the library function the matching DVC stage calls (dvc.yaml runs the same steps).
Retries are for I/O (the DVC remote, the MLflow server); bad data, a failed training or a failed evaluation
fail the run at once, and nothing is registered unless training exited 0 and the evaluation ran. A global
concurrency limit keeps two retrains from competing for the same machines.

Run it:  python -m flows.retrain [--set train.max_steps=20 ...]
(with no PREFECT_API_URL set, Prefect starts its own local server for the run)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import lorag  # noqa: F401  (first: sets the telemetry-off / offline environment before Prefect reads it)
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from flows.common import ensure_concurrency_limit, io_error
from lorag.config import Params, load_params

RETRAIN_LIMIT = "lorag-retrain"



@task(cache_policy=NO_CACHE)
def prepare_examples(params: Params) -> str:
    from lorag.stages.prepare_examples import prepare_examples as prepare

    return str(prepare(params))


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=io_error, cache_policy=NO_CACHE)
def snapshot_examples(params: Params) -> str:
    from lorag.versioning.dvc_repo import snapshot_folder

    return snapshot_folder(params, params.examples.dir).data_rev


@task(cache_policy=NO_CACHE)
def validate_examples(params: Params) -> str:
    from lorag.stages.validate_examples import run

    return run(params).summary()


@task(cache_policy=NO_CACHE)
def train_adapter(params: Params, overrides: list[str], run_dir: Path) -> str:
    from lorag.training.launcher import launch_training, parse_event

    logger = get_run_logger()

    def log_step(line: str) -> None:
        event = parse_event(line)
        if event and event["event"] == "step":
            logger.info("step %s/%s loss %.4f", event["step"], event["total_steps"], event["loss"])

    result = launch_training(params, run_dir, overrides, on_line=log_step, track=True)
    return str(result.mlflow_run_id)


@task(cache_policy=NO_CACHE)
def evaluate_adapter(params: Params, run_dir: Path):
    from lorag.evaluation.adapter_eval import run_evaluation

    return run_evaluation(params, run_dir)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=io_error, cache_policy=NO_CACHE)
def register_adapter(params: Params, train_run_id: str, run_dir: Path, report: Any):
    from lorag.registry.models import register_adapter as register

    return register(params, train_run_id, run_dir / "adapter", report,
                    plot=params.path(params.adapter_eval.plot_path))


@flow(name="lorag-retrain", log_prints=True)
def retrain_flow(params_path: str = "params.yaml", overrides: list[str] | None = None) -> dict:
    """Retrain the adapter on the current examples and register it as `challenger`; returns the summary."""
    from lorag.stages.train import new_run_dir

    overrides = list(overrides or [])
    params = load_params(params_path, overrides)
    ensure_concurrency_limit(RETRAIN_LIMIT)
    with concurrency(RETRAIN_LIMIT, occupy=1, strict=True):
        if not params.path(params.examples.dir).is_dir():
            prepare_examples(params)  # first run on a fresh clone: start from the shipped sample
        data_rev = snapshot_examples(params) if params.versioning.enabled else None
        validation = validate_examples(params)
        run_dir = new_run_dir(params, prefix="flow")
        train_run_id = train_adapter(params, overrides, run_dir)
        report = evaluate_adapter(params, run_dir)
        registered = register_adapter(params, train_run_id, run_dir, report)
    summary = {"model": registered.name, "version": registered.version, "alias": "challenger",
               "examples_data_rev": data_rev, "validation": validation, "run_dir": str(run_dir),
               "train_run_id": registered.train_run_id, "eval_run_id": registered.eval_run_id,
               "eval": report.metrics()}
    get_run_logger().info("retrain summary: %s", json.dumps({k: summary[k] for k in ("model", "version")}))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the lorag retrain flow under Prefect.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    print(json.dumps(retrain_flow(args.params, args.overrides), indent=2, default=str))


if __name__ == "__main__":
    main()
