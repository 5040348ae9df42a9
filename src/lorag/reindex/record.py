"""What a re-index leaves behind for people besides its MLflow run (lorag.tracking.reindex): the quarantine."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.reindex.prepare import Prepared


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
