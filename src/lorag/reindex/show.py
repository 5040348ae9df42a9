"""Human-readable re-index summaries for the terminal."""

from __future__ import annotations

from typing import Any


def print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    title = "Re-index plan (dry run, nothing written)" if summary["dry_run"] else "Re-index"
    console.print(f"[bold]{title}[/bold]: {summary['mode']} ({summary['reason']})")
    console.print(f"collection {summary['collection']}  data revision {summary['data_rev'][:12]}")
    table = Table("", "documents", "", "chunks", "", "embeddings")
    docs, chunks, emb = summary["documents"], summary["chunks"], summary["embeddings"]
    verb = "to compute" if summary["dry_run"] else "computed"
    rows = [
        ("added", docs["added"], "upserted", chunks["chunks_upserted"], verb, emb["computed"]),
        ("modified", docs["modified"], "deleted", chunks["chunks_deleted"], "reused", emb["reused"]),
        ("renamed", docs["renamed"], "unchanged", chunks["chunks_unchanged"], "", ""),
        ("deleted", docs["deleted"], "total after", chunks["chunks_expected"], "", ""),
        ("unchanged", docs["unchanged"], "", "", "", ""),
        ("quarantined", docs["quarantined"], "", "", "", ""),
    ]
    for row in rows:
        table.add_row(*(str(x) for x in row))
    console.print(table)
    for item in summary["quarantined"][:20]:
        console.print(f"[yellow]quarantined[/yellow] {item['doc_id']}: {item['rule']} ({item['detail']})")
    if summary.get("quarantine_dir"):
        console.print(f"quarantine report: {summary['quarantine_dir']}")
