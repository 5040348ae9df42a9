"""Behavior track as a Prefect flow: examples -> snapshot -> validate -> train (accelerate) -> record -> evaluate
-> register -> evaluation matrix.

Wiring only: every task makes one call into lorag.retrain, the layer the CLI and the DVC stages call too.
Retries are for I/O (the DVC remote, the MLflow server); bad data, a failed training or a failed evaluation fail
the run at once, and nothing is registered unless training exited 0 and the evaluation ran. A re-run after a
crash resumes the unfinished training made from the same params and data. A global concurrency limit keeps two
retrains from competing for the same machines.

Run it:  python -m flows.retrain [--params other.yaml] [--set train.max_steps=20 ...]
(with no PREFECT_API_URL set, Prefect starts its own local server for the run)
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import lorag  # noqa: F401  (first: sets the telemetry-off / offline environment before Prefect reads it)
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from flows.common import ensure_concurrency_limit, io_error
from lorag.config import Params, load_params
from lorag.retrain import evaluate, examples, register, train

RETRAIN_LIMIT = "lorag-retrain"


@task(cache_policy=NO_CACHE)
def prepare_examples(params: Params) -> str:
    return str(examples.prepare_examples(params))


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=io_error, cache_policy=NO_CACHE)
def snapshot_examples(params: Params) -> str:
    return examples.snapshot_examples(params)


@task(cache_policy=NO_CACHE)
def validate_examples(params: Params) -> str:
    return examples.validate_examples(params).summary()


@task(cache_policy=NO_CACHE)
def train_adapter(params: Params) -> Any:
    from lorag.training.launcher import parse_event

    logger = get_run_logger()

    def log_step(line: str) -> None:
        event = parse_event(line)
        if event and event["event"] == "step":
            logger.info("step %s/%s loss %.4f", event["step"], event["total_steps"], event["loss"])

    return train.train(params, on_line=log_step)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=io_error, cache_policy=NO_CACHE)
def record_training(params: Params, trained: Any) -> str:
    return train.record(params, trained)


@task(cache_policy=NO_CACHE)
def evaluate_adapter(params: Params, trained: Any) -> Any:
    return evaluate.evaluate(params, trained.run)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=io_error, cache_policy=NO_CACHE)
def register_adapter(params: Params, trained: Any, report: Any) -> Any:
    return register.register(params, trained.run, report)


@task(cache_policy=NO_CACHE)
def evaluate_matrix(params: Params, registered: Any) -> Any:
    return evaluate.evaluate_matrix(params, registered.version)


@flow(name="lorag-retrain", log_prints=True)
def retrain_flow(params_path: str = "params.yaml", overrides: list[str] | None = None) -> dict:
    """Retrain the adapter on the current examples and register it as `challenger`; returns the summary."""
    params = load_params(params_path, overrides or [])
    ensure_concurrency_limit(RETRAIN_LIMIT)
    with concurrency(RETRAIN_LIMIT, occupy=1, strict=True):
        if not params.examples.dir.is_dir():
            prepare_examples(params)  # first run on a fresh clone: start from the shipped sample
        data_rev = snapshot_examples(params) if params.versioning.enabled else None
        validation = validate_examples(params)
        trained = train_adapter(params)
        record_training(params, trained)
        report = evaluate_adapter(params, trained)
        registered = register_adapter(params, trained, report)
        matrix = evaluate_matrix(params, registered)
    summary = {**registered.summary(), "examples_data_rev": data_rev, "validation": validation,
               "run_dir": str(trained.run_dir), "resumed_from_step": trained.summary.get("resumed_from_step"),
               "steps": trained.summary["steps"], "eval": report.metrics(), "eval_run_id": matrix.run_id,
               "matrix": {k: v for k, v in matrix.metrics().items() if k.endswith(".f1")}}
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
