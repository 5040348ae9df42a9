"""Behavior track as a Prefect flow: examples -> snapshot -> validate -> train (accelerate) -> record -> evaluate
-> register -> evaluation matrix -> gates -> pause for a reviewer (Prefect UI form or `lorag approve`) -> promote,
or record the rejection / timeout (lorag.promotion).

Wiring only: every task makes one call into lorag.retrain, the layer the CLI and the DVC stages call too.
Retries are for I/O (the DVC remote, the MLflow server); bad data, a failed training or a failed evaluation fail
the run at once, and nothing is registered unless training exited 0 and the evaluation ran. A re-run after a
crash resumes the unfinished training made from the same params and data. A global concurrency limit keeps two
retrains from competing for the same machines.

Run it:  python -m flows.retrain [--params other.yaml] [--set train.max_steps=20 ...] [--no-wait]
(with no PREFECT_API_URL set, Prefect starts its own local server for the run)
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Literal

import lorag  # noqa: F401  (first: sets the telemetry-off / offline environment before Prefect reads it)
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.input import RunInput

from flows.common import ensure_concurrency_limit, io_error
from lorag.config import Params, load_params
from lorag.retrain import evaluate, examples, register, train

RETRAIN_LIMIT = "lorag-retrain"
REVIEW_POLL_S = 5  # how often a paused run asks the server whether it was resumed


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


class ReviewInput(RunInput):
    """The form the Prefect UI shows a reviewer (and what `lorag approve` / `lorag reject` send)."""

    decision: Literal["approve", "reject"]
    reviewer: str
    reason: str
    override: bool = False


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=io_error, cache_policy=NO_CACHE)
def gate_version(params: Params, version: str) -> dict:
    from lorag.promotion.review import build_review, record_decision

    review = build_review(params, version)
    record_decision(params, review)
    return {"approved": review.decision.approved, "rationale": review.decision.rationale}


@task(cache_policy=NO_CACHE)
def apply_review(params: Params, version: str, answer: ReviewInput) -> dict:
    from lorag.promotion.approvals import ApprovalRefused, ApprovalRequest
    from lorag.promotion.promote import approve, reject

    if answer.decision == "reject":
        reject(params, version, answer.reviewer, answer.reason)
        return {"review": "rejected", "by": answer.reviewer}
    try:
        manifest = approve(params, ApprovalRequest(version, answer.reviewer, answer.reason, answer.override))
    except ApprovalRefused as exc:  # refused and recorded: the run says so without failing the training
        return {"review": "refused", "rule": exc.rule, "message": str(exc)}
    return {"review": "approved", "by": answer.reviewer, "released_version": manifest["released_version"]}


@task(cache_policy=NO_CACHE)
def record_timeout(params: Params, version: str, timeout_s: int) -> None:
    from lorag.promotion.promote import reject

    reject(params, version, "lorag", f"no review within promotion.approval_timeout_s={timeout_s} s", "timeout")


def await_review(params: Params, version: str, wait: bool = True) -> dict:
    """Gates, then (when they pass) pause for a reviewer; a timeout is recorded as a rejection and fails the run."""
    from prefect.context import get_run_context
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    from lorag.promotion.resume import mark_waiting

    gate = gate_version(params, version)
    if not gate["approved"] or not wait:
        return {"review": "gates failed" if not gate["approved"] else "waiting for `lorag approve`", **gate}
    timeout = params.promotion.approval_timeout_s
    mark_waiting(params, version, str(get_run_context().flow_run.id))
    try:
        answer = pause_flow_run(wait_for_input=ReviewInput, timeout=timeout, poll_interval=REVIEW_POLL_S,
                                key=f"review-v{version}")
    except FlowPauseTimeout:
        record_timeout(params, version, timeout)
        raise
    return {**apply_review(params, version, answer), **gate}


@flow(name="lorag-review", log_prints=True)
def review_flow(version: str, params_path: str = "params.yaml", overrides: list[str] | None = None) -> dict:
    """Gate and review one registered version (the retrain flow does the same after registering)."""
    return await_review(load_params(params_path, overrides or []), str(version))


@flow(name="lorag-retrain", log_prints=True)
def retrain_flow(params_path: str = "params.yaml", overrides: list[str] | None = None,
                 wait_for_review: bool = True) -> dict:
    """Retrain the adapter on the current examples, register it as `challenger`, gate it and (gates passed,
    `wait_for_review`) pause for a reviewer's decision; returns the summary."""
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
    # Outside the concurrency limit: a day-long wait for a reviewer must not block the next retrain.
    summary["review"] = await_review(params, registered.version, wait_for_review)
    get_run_logger().info("retrain summary: %s", json.dumps({k: summary[k] for k in ("model", "version")}))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the lorag retrain flow under Prefect.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-wait", action="store_true",
                        help="gate the new version, then leave its review to `lorag approve` / `lorag reject`")
    args = parser.parse_args(argv)
    print(json.dumps(retrain_flow(args.params, args.overrides, not args.no_wait), indent=2, default=str))


if __name__ == "__main__":
    main()
