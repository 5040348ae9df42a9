"""The knowledge track's MLflow record: one run per re-index that spans the work it records.

The run is opened before the snapshot and closed with the outcome (FINISHED, or FAILED with the reason), so its
duration is the re-index's. A process killed half-way leaves its run RUNNING; the next re-index of the same index
(which holds the re-index lock, so no other run of it is alive) closes such runs: FINISHED with the published
facts when the killed process had already published (its run key is in the published state), KILLED otherwise.
A published state whose run left no record at all gets a recovered run, so the MLflow history matches what was
served.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorag.faults import pause_point

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.reindex.result import ReindexResult

RUNNING = "RUNNING"


def index_identity(params: Params) -> str:
    """Which index a run wrote: the backend, where it lives and the alias (two projects never mix records)."""
    import os

    where = params.index.lancedb_dir if params.index.backend == "lancedb" else os.environ.get(params.index.weaviate.url_env, "")
    return f"{params.index.backend}:{where}:{params.index.name}"


class ReindexRecord:
    """An open MLflow run for one re-index. `open` also repairs what killed runs left behind."""

    def __init__(self, params: Params, client: Any, run_id: str, run_key: str) -> None:
        self.params, self.client, self.run_id, self.run_key = params, client, run_id, run_key

    @classmethod
    def open(cls, params: Params, run_key: str, published: dict[str, Any] | None) -> ReindexRecord:
        from mlflow.tracking import MlflowClient

        from lorag.tracking import configure_mlflow

        experiment_id = configure_mlflow(params, params.mlflow.reindex_experiment)
        client = MlflowClient(params.tracking_uri)
        repair_records(params, client, experiment_id, published)
        tags = {"lorag.track": "knowledge", "lorag.index": index_identity(params), "lorag.alias": params.index.name,
                "lorag.run_key": run_key}
        run = client.create_run(experiment_id, tags=tags, run_name=f"reindex-{time.strftime('%Y%m%dT%H%M%S')}")
        return cls(params, client, run.info.run_id, run_key)

    def finish(self, result: ReindexResult) -> None:
        """Log what the run did and close it FINISHED."""
        from mlflow.entities import Metric, Param, RunTag

        from lorag.tracking import flatten

        prepared, summary, now = result.prepared, result.summary(), int(time.time() * 1000)
        knobs: dict[str, Any] = {}
        for section in ("corpus", "validation", "chunking", "embedding", "index", "versioning"):
            knobs.update(flatten(section, getattr(self.params, section)))
        metrics = {f"documents_{k}": v for k, v in summary["documents"].items()}
        metrics.update(summary["chunks"])
        metrics.update({f"embeddings_{k}": v for k, v in summary["embeddings"].items()})
        metrics.update({f"seconds_{k}": v for k, v in result.seconds.items()})
        metrics.update({f"verified_{k}": v for k, v in result.verified.items() if isinstance(v, (int, float))})
        tags = {"lorag.mode": prepared.mode, "lorag.data_rev": prepared.snapshot.data_rev,
                "lorag.git_rev": prepared.snapshot.git_rev or "", "lorag.collection": prepared.collection,
                "lorag.embedder": prepared.embedder, "lorag.published": "true"}
        pause_point("record:1")
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)[:500]) for k, v in knobs.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "reindex_summary.json").write_text(json.dumps(summary, indent=2, default=str))
            (Path(tmp) / "validation_report.json").write_text(prepared.report.to_json())
            self.client.log_artifacts(self.run_id, tmp)
        self.client.set_terminated(self.run_id, "FINISHED")

    def fail(self, exc: BaseException) -> None:
        """Close the run FAILED with the reason (a tripped guard, bad documents, a store error, Ctrl-C)."""
        reason = f"{type(exc).__name__}: {exc}"[:4000]
        self.client.set_tag(self.run_id, "lorag.error", reason)
        self.client.set_terminated(self.run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")


def repair_records(params: Params, client: Any, experiment_id: str, published: dict[str, Any] | None) -> list[str]:
    """Close the runs killed re-indexes of this index left RUNNING, and record a published revision that has no
    run. Call only while holding the re-index lock. Returns the ids of the runs it closed or created."""
    index = index_identity(params)
    published_key = (published or {}).get("run_key") or ""
    touched = []
    dangling = client.search_runs(
        [experiment_id], filter_string=f"tags.`lorag.index` = '{_quote(index)}' and attributes.status = '{RUNNING}'"
    )
    for run in dangling:
        if published_key and run.data.tags.get("lorag.run_key") == published_key:
            _log_published(client, run.info.run_id, published or {}, "the process died after publishing")
            client.set_terminated(run.info.run_id, "FINISHED")
        else:
            client.set_tag(run.info.run_id, "lorag.error", "the process ended before publishing (killed or crashed); "
                           "nothing it planned was published. Closed by the next re-index.")
            client.set_terminated(run.info.run_id, "KILLED")
        touched.append(run.info.run_id)
    if published_key and not client.search_runs(
        [experiment_id], filter_string=f"tags.`lorag.run_key` = '{_quote(published_key)}'", max_results=1
    ):
        tags = {"lorag.track": "knowledge", "lorag.index": index, "lorag.alias": params.index.name,
                "lorag.run_key": published_key}
        run = client.create_run(experiment_id, tags=tags, run_name=f"reindex-recovered-{published_key[:8]}")
        _log_published(client, run.info.run_id, published or {}, "the published revision had no MLflow record")
        client.set_terminated(run.info.run_id, "FINISHED")
        touched.append(run.info.run_id)
    return touched


def _log_published(client: Any, run_id: str, state: dict[str, Any], why: str) -> None:
    client.set_tag(run_id, "lorag.recovered", f"{why}; recorded from the published index state by the next run")
    client.set_tag(run_id, "lorag.published", "true")
    for key in ("collection", "data_rev", "git_rev", "embedder"):
        client.set_tag(run_id, f"lorag.{key}", str(state.get(key) or ""))
    client.log_metric(run_id, "chunks_expected", float(state.get("chunk_count") or 0))


def _quote(value: str) -> str:
    return value.replace("'", "\\'")
