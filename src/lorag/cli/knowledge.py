"""Knowledge-track commands: `lorag reindex`, `lorag search`, `lorag status`."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Annotated, Optional

import typer

from lorag.cli.common import ParamsOpt, SetOpt, cli_params, fail


def reindex(
    params_path: ParamsOpt = None,
    overrides: SetOpt = None,
    full: Annotated[bool, typer.Option("--full", help="build a new collection, verify it, then swap the alias")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan; write nothing")] = False,
    accept_deletions: Annotated[bool, typer.Option(
        "--accept-deletions", help="the deletions are intended: let this run remove more of the published index "
        "than index.max_delete_ratio allows (any mode)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Bring the index up to date with the documents folder (incremental by default).

    A deletion guard stops any run (incremental or --full) that would remove more than index.max_delete_ratio of
    the published index; --dry-run shows such a plan and says so; --accept-deletions lets an intended one through.

    Examples:
      lorag reindex --dry-run
      lorag reindex
      lorag reindex --full --set index.keep_last=3
      lorag reindex --accept-deletions      (after removing a large part of the documents on purpose)
    """
    from lorag.progress import RichProgress
    from lorag.reindex.run import run_reindex
    from lorag.reindex.show import print_summary

    params = cli_params(params_path, overrides)
    try:
        # Libraries (DVC, MLflow) print to stdout; keep stdout for our own output so --json stays parseable.
        with contextlib.redirect_stdout(sys.stderr), RichProgress() as progress:
            result = run_reindex(params, full, dry_run, accept_deletions, progress=progress)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        fail(exc)
    summary = result.summary()
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print_summary(summary)


def search(
    query: Annotated[str, typer.Argument(help="the question or keywords")],
    params_path: ParamsOpt = None,
    overrides: SetOpt = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", "-k", min=1, help="results to return (default search.top_k)")] = None,
    alpha: Annotated[Optional[float], typer.Option(help="1 = dense only, 0 = full-text only")] = None,
    mode: Annotated[str, typer.Option(help="hybrid, dense or fulltext")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Hybrid search over the published index; every result carries its citation.

    Examples:
      lorag search "how often should hives be inspected in summer?"
      lorag search "varroa" --mode fulltext --json
    """
    from lorag.retrieval.search import citation, hits_as_json
    from lorag.retrieval.search import search as run_search

    if mode not in ("hybrid", "dense", "fulltext"):
        fail(ValueError(f"--mode {mode!r}: use hybrid, dense or fulltext"))
    params = cli_params(params_path, overrides)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            hits = run_search(params, query, top_k=top_k, alpha=alpha, mode=mode)  # type: ignore[arg-type]
    except (RuntimeError, ValueError) as exc:
        fail(exc)
    if as_json:
        print(json.dumps(hits_as_json(hits), indent=2))
        return
    from lorag.console import output_console

    console = output_console()
    for i, hit in enumerate(hits, 1):
        console.print(f"[bold][{i}][/bold] [cyan]{citation(hit)}[/cyan]  score {hit.score:.3f}")
        snippet = " ".join(hit.text.split())
        console.print(f"    {snippet[:300]}{'...' if len(snippet) > 300 else ''}", highlight=False)
    if not hits:
        console.print("no results")


def status(
    params_path: ParamsOpt = None,
    overrides: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Show what the published index reflects (collection, data revision, chunks, whether a run is pending) and
    the champion and challenger (versions, key metrics, age, who released the champion).

    Examples:
      lorag status
      lorag status --json
    """
    from lorag.index.stores import published_state

    params = cli_params(params_path, overrides)
    try:
        state = published_state(params)
    except RuntimeError as exc:
        fail(exc)
    if state is None:
        typer.echo(f"no index published as '{params.index.name}' yet: run `lorag reindex`")
        raise typer.Exit(1)
    documents = len(state.pop("manifest", None) or {})
    from lorag.cli.promotion import models_or_error, print_models

    models = models_or_error(params)  # champion and challenger beside the index
    if as_json:
        print(json.dumps({**state, "documents": documents, "models": models}, indent=2, default=str))
        return
    from lorag.console import output_console
    from rich.table import Table

    table = Table(show_header=False, box=None)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # ids and revisions are copied from here: never cut them with "..."
    for key, value in [
        ("index", f"{params.index.name} ({params.index.backend})"), ("collection", state["collection"]),
        ("data revision", state["data_rev"]), ("git commit", state.get("git_rev") or "-"),
        ("documents", documents), ("chunks", state["chunk_count"]), ("published at", state.get("updated_at") or "-"),
        ("embedder", state["embedder"][:16]), ("previous builds", ", ".join(state.get("history") or []) or "-"),
    ]:
        table.add_row(f"[bold]{key}[/bold]", str(value))
    console = output_console()
    console.print(table)
    print_models(console, models)
    if state.get("pending"):
        console.print(
            f"[yellow]a re-index is pending[/yellow]: a run stopped while writing {len(state['pending'])} "
            "document(s); until the next `lorag reindex` finishes, search may also return chunks of pages that "
            "were since deleted or renamed."
        )
