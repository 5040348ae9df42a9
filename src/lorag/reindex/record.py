"""What a re-index leaves behind for people: the quarantine report and one MLflow run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.reindex.prepare import Prepared
    from lorag.reindex.run import ReindexResult


def quarantine_failures(params: Params, prepared: Prepared) -> str | None:
    """Copy the documents that failed validation aside (once per content) with this run's report; the originals
    stay where they are. Returns the quarantine folder when something failed, else None.

    The report is rewritten even when nothing failed (if one exists), so it always describes the latest run: the
    next run reads it to tell files still quarantined from newly quarantined ones.
    """
    from lorag.validation.quarantine import REPORT_NAME, quarantine

    folder = params.validation.quarantine_dir
    if not prepared.report.failures and not (folder / REPORT_NAME).exists():
        return None
    quarantine(
        prepared.report,
        params.corpus.docs_dir,
        folder,
        label=f"rev-{prepared.snapshot.data_rev[:12]}",
        max_bytes=params.corpus.max_file_bytes,
    )
    return str(folder) if prepared.report.failures else None


def record_reindex(params: Params, result: ReindexResult) -> str:
    """One MLflow run per re-index: knobs as params, counts and timings as metrics, revisions as tags."""
    import mlflow

    from lorag.tracking import flatten, mlflow_run

    prepared = result.prepared
    summary = result.summary()
    tags = {
        "lorag.track": "knowledge",
        "lorag.mode": prepared.mode,
        "lorag.data_rev": prepared.snapshot.data_rev,
        "lorag.git_rev": prepared.snapshot.git_rev or "",
        "lorag.collection": prepared.collection,
        "lorag.alias": prepared.alias,
        "lorag.embedder": prepared.embedder,
    }
    with mlflow_run(params, params.mlflow.reindex_experiment, f"reindex-{prepared.snapshot.data_rev[:8]}", tags) as run:
        knobs = {}
        for section in ("corpus", "validation", "chunking", "embedding", "index", "versioning"):
            knobs.update(flatten(section, getattr(params, section)))
        mlflow.log_params({k: str(v)[:500] for k, v in knobs.items()})
        metrics = {f"documents_{k}": v for k, v in summary["documents"].items()}
        metrics.update(summary["chunks"])
        metrics.update({f"embeddings_{k}": v for k, v in summary["embeddings"].items()})
        metrics.update({f"seconds_{k}": v for k, v in result.seconds.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "reindex_summary.json"
            path.write_text(json.dumps(summary, indent=2, default=str))
            mlflow.log_artifact(str(path))
            report = Path(tmp) / "validation_report.json"
            report.write_text(prepared.report.to_json())
            mlflow.log_artifact(str(report))
        return run.info.run_id
