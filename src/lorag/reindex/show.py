"""Human-readable re-index summaries for the terminal."""

from __future__ import annotations

from typing import Any

_SHOWN = 20  # quarantined files and notes listed by name; the rest are counted


def print_summary(summary: dict[str, Any]) -> None:
    from lorag.console import output_console
    from rich.table import Table

    console = output_console()
    title = "Re-index plan (dry run, nothing written)" if summary["dry_run"] else "Re-index"
    console.print(f"[bold]{title}[/bold]: {summary['mode']} ({summary['reason']})")
    console.print(f"collection {summary['collection']}  data revision {summary['data_rev'][:12]}")
    table = Table("", "documents", "", "chunks", "", "embeddings")
    docs, chunks, emb = summary["documents"], summary["chunks"], summary["embeddings"]
    verb = "to compute" if summary["dry_run"] else "computed"
    still = f" ({docs['still_quarantined']} as before)" if docs["still_quarantined"] else ""
    rows = [
        ("added", docs["added"], "upserted", chunks["chunks_upserted"], verb, emb["computed"]),
        ("modified", docs["modified"], "deleted", chunks["chunks_deleted"], "reused", emb["reused"]),
        ("renamed", docs["renamed"], "unchanged", chunks["chunks_unchanged"], "", ""),
        ("deleted", docs["deleted"], "total after", chunks["chunks_expected"], "", ""),
        ("unchanged", docs["unchanged"], "", "", "", ""),
        ("quarantined", f"{docs['quarantined']}{still}", "", "", "", ""),
        ("not documents", docs["skipped"], "", "", "", ""),
    ]
    for row in rows:
        table.add_row(*(str(x) for x in row))
    console.print(table)
    _print_files(console, summary)


def _print_files(console: Any, summary: dict[str, Any]) -> None:
    """Each quarantined file once (all its rules), each note, and what was skipped as not a document."""
    quarantined = summary["quarantined"]
    for item in quarantined[:_SHOWN]:
        again = " [dim](same content as the last run)[/dim]" if item["still"] else ""
        console.print(f"[yellow]quarantined[/yellow] {item['doc_id']}: {item['rule']} ({item['detail']}){again}")
    if len(quarantined) > _SHOWN:
        console.print(f"... and {len(quarantined) - _SHOWN} more quarantined files (see the quarantine report)")
    notes = summary["notes"]
    for note in notes[:_SHOWN]:
        console.print(f"[yellow]note[/yellow] {note['doc_id']}: {note['rule']} ({note['detail']})")
    if len(notes) > _SHOWN:
        console.print(f"... and {len(notes) - _SHOWN} more notes (see validation_report.json in the MLflow run)")
    skipped = summary["skipped"]
    if skipped["count"]:
        kinds = ", ".join(f"{suffix} {n}" for suffix, n in skipped["by_suffix"].items())
        console.print(
            f"not documents, skipped: {skipped['count']} files ({kinds}), e.g. {', '.join(skipped['examples'])}. "
            "corpus.suffixes lists the document types; corpus.other_files: quarantine reports these as failures."
        )
    if summary["quarantine_dir"]:  # None when nothing was quarantined (and always in a dry run)
        console.print(f"quarantine report: {summary['quarantine_dir']}/report.json")
