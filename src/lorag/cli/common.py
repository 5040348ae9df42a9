"""What every `lorag` command shares: the --params / --set options, loading Params, failing with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer

from lorag.config import ConfigError, Params, load_params

ParamsOpt = Annotated[Optional[Path], typer.Option("--params", "-p", help="params.yaml to use (default: ./params.yaml)")]
SetOpt = Annotated[
    Optional[list[str]], typer.Option("--set", "-s", help="override a param: --set index.backend=weaviate (repeatable)")
]


def cli_params(path: Optional[Path], overrides: Optional[list[str]]) -> Params:
    """Load and validate Params; a config error prints its fix and exits 2 before any work starts."""
    try:
        return load_params(path, overrides or [])
    except ConfigError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None


def fail(exc: Exception) -> NoReturn:
    """One red line on stderr, exit 1: the message already says what to do."""
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(1)
