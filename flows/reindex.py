"""Knowledge track as a Prefect flow: the library's re-index recipe with every step run as a Prefect task.

Wiring only: the recipe (lorag.reindex.run) is written once and takes a step runner; here each step becomes a
task (visible in the UI, retried when a retry can help: I/O on the DVC remote, the index store, MLflow). A
validation failure or a tripped deletion guard fails the run at once. A global concurrency limit keeps two
re-indexes from overlapping across machines; the library's file lock does the same on one machine.

Run it:  python -m flows.reindex [--full] [--dry-run] [--accept-deletions] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable

import lorag  # noqa: F401  (first: sets the telemetry-off / offline environment before Prefect reads it)
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from flows.common import ensure_concurrency_limit, io_error
from lorag.config import load_params
from lorag.reindex.run import run_reindex

REINDEX_LIMIT = "lorag-reindex"
RETRIED_STEPS = {"scan", "snapshot", "write", "publish", "record"}  # idempotent I/O: safe and useful to retry


def as_task(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run one recipe step as a Prefect task named after the step."""
    retries = {"retries": 2, "retry_delay_seconds": 2, "retry_condition_fn": io_error} if name in RETRIED_STEPS else {}
    return task(fn, name=name, cache_policy=NO_CACHE, **retries)(*args)


@flow(name="lorag-reindex", log_prints=True)
def reindex_flow(
    params_path: str = "params.yaml",
    overrides: list[str] | None = None,
    full: bool = False,
    dry_run: bool = False,
    accept_deletions: bool = False,
) -> dict:
    """Re-index the documents folder; returns the run summary."""
    from lorag.progress import RichProgress

    params = load_params(params_path, overrides or [])
    ensure_concurrency_limit(REINDEX_LIMIT)
    with concurrency(REINDEX_LIMIT, occupy=1, strict=True), RichProgress() as progress:
        result = run_reindex(params, full, dry_run, accept_deletions, progress=progress, run_step=as_task)
    summary = result.summary()
    shown = {k: summary[k] for k in ("mode", "documents", "chunks", "embeddings")}
    get_run_logger().info("re-index summary: %s", json.dumps(shown))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the lorag re-index flow under Prefect.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--accept-deletions", action="store_true", help="let this run delete past index.max_delete_ratio")
    args = parser.parse_args(argv)
    summary = reindex_flow(args.params, args.overrides, args.full, args.dry_run, args.accept_deletions)
    from lorag.reindex.show import print_summary

    print_summary(summary)


if __name__ == "__main__":
    main()
