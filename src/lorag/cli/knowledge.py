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
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Bring the index up to date with the documents folder (incremental by default).

    Examples:
      lorag reindex --dry-run
      lorag reindex
      lorag reindex --full --set index.keep_last=3
    """
    from lorag.progress import RichProgress
    from lorag.reindex.run import run_reindex
    from lorag.reindex.show import print_summary

    params = cli_params(params_path, overrides)
    try:
        # Libraries (DVC, MLflow) print to stdout; keep stdout for our own output so --json stays parseable.
        with contextlib.redirect_stdout(sys.stderr), RichProgress() as progress:
            result = run_reindex(params, full=full, dry_run=dry_run, progress=progress)
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
    top_k: Annotated[Optional[int], typer.Option("--top-k", "-k", help="results to return")] = None,
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
    from rich.console import Console

    console = Console()
    for i, hit in enumerate(hits, 1):
        console.print(f"[bold][{i}][/bold] [cyan]{citation(hit)}[/cyan]  score {hit.score:.3f}")
        snippet = " ".join(hit.text.split())
        console.print(f"    {snippet[:300]}{'...' if len(snippet) > 300 else ''}", highlight=False)
    if not hits:
        console.print("no results")


def status(params_path: ParamsOpt = None, overrides: SetOpt = None) -> None:
    """Show what the published index reflects: collection, data revision, chunk count."""
    from lorag.index.stores import published_state

    params = cli_params(params_path, overrides)
    state = published_state(params)
    if state is None:
        typer.echo(f"no index published as '{params.index.name}' yet: run `lorag reindex`")
        raise typer.Exit(1)
    state.pop("manifest", None)
    print(json.dumps(state, indent=2))
