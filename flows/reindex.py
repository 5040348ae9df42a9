"""Knowledge track as a Prefect flow: snapshot -> validate/plan -> embed -> write -> verify -> publish.

Wiring only: every task calls one lorag library step. Retries are for I/O (DVC remote, index store); a
validation failure or a tripped deletion guard fails the run at once. A global concurrency limit keeps two
re-indexes from overlapping across machines; the library's file lock does the same on one machine.

Run it:  python -m flows.reindex [--full] [--dry-run] [--set key=value ...]
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
from lorag.reindex import apply, prepare, record
from lorag.reindex.run import ReindexResult, count_cached, reindex_lock

REINDEX_LIMIT = "lorag-reindex"



def _store(params: Params):
    from lorag.index.stores import open_store

    return open_store(params)


def _embedder(params: Params):
    from lorag.embedding.embedder import load_embedder

    return load_embedder(params.embedding, root=params.root)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=io_error, cache_policy=NO_CACHE)
def snapshot_docs(params: Params, dry_run: bool):
    return prepare.take_snapshot(params, dry_run=dry_run)


@task(cache_policy=NO_CACHE)
def plan_changes(params: Params, snapshot: Any, full: bool) -> prepare.Prepared:
    store = _store(params)
    try:
        return prepare.prepare(params, snapshot, store, _embedder(params), full=full)
    finally:
        store.close()


@task(cache_policy=NO_CACHE)
def quarantine_bad_documents(params: Params, prepared: prepare.Prepared) -> str | None:
    from lorag.validation.documents import require_ok

    folder = record.quarantine_failures(params, prepared)
    require_ok(prepared.report)
    return folder


@task(cache_policy=NO_CACHE)
def embed_chunks(params: Params, prepared: prepare.Prepared) -> apply.Embedded:
    from lorag.progress import RichProgress

    with RichProgress() as progress:
        return apply.embed_plan(params, prepared, _embedder(params), progress)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=io_error, cache_policy=NO_CACHE)
def write_chunks(params: Params, prepared: prepare.Prepared, embedded: apply.Embedded) -> float:
    store = _store(params)
    try:
        return apply.write_plan(store, prepared, embedded, _embedder(params).dim, params.index.write_batch)
    finally:
        store.close()


@task(cache_policy=NO_CACHE)
def verify_index(params: Params, prepared: prepare.Prepared, embedded: apply.Embedded) -> dict:
    store = _store(params)
    try:
        return apply.verify_plan(store, prepared, embedded)
    finally:
        store.close()


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=io_error, cache_policy=NO_CACHE)
def publish_index(params: Params, prepared: prepare.Prepared) -> None:
    store = _store(params)
    try:
        apply.publish(store, params, prepared)
    finally:
        store.close()


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=io_error, cache_policy=NO_CACHE)
def record_run(params: Params, result: ReindexResult) -> str:
    return record.record_reindex(params, result)



@flow(name="lorag-reindex", log_prints=True)
def reindex_flow(
    params_path: str = "params.yaml", overrides: list[str] | None = None, full: bool = False, dry_run: bool = False
) -> dict:
    """Re-index the documents folder; returns the run summary."""
    params = load_params(params_path, overrides or [])
    ensure_concurrency_limit(REINDEX_LIMIT)
    with concurrency(REINDEX_LIMIT, occupy=1, strict=True), reindex_lock(params):
        snapshot = snapshot_docs(params, dry_run)
        prepared = plan_changes(params, snapshot, full)
        result = ReindexResult(prepared=prepared, dry_run=dry_run)
        if dry_run:
            result.embeddings_reused, result.embeddings_computed = count_cached(params, prepared)
        else:
            result.quarantine_dir = quarantine_bad_documents(params, prepared)
            embedded = embed_chunks(params, prepared)
            result.embeddings_computed, result.embeddings_reused = embedded.computed, embedded.reused
            result.seconds.update(prepare=prepared.seconds["prepare"], embed=embedded.seconds)
            result.seconds["write"] = write_chunks(params, prepared, embedded)
            result.verified = verify_index(params, prepared, embedded)
            publish_index(params, prepared)
            result.run_id = record_run(params, result)
    summary = result.summary()
    get_run_logger().info("re-index summary: %s", json.dumps({k: summary[k] for k in ("mode", "documents", "chunks", "embeddings")}))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the lorag re-index flow under Prefect.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    summary = reindex_flow(args.params, args.overrides, args.full, args.dry_run)
    from lorag.reindex.show import print_summary

    print_summary(summary)


if __name__ == "__main__":
    main()
