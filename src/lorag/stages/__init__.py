"""DVC stage entry points: argv -> load_params -> one call into lorag.retrain. `dvc.yaml` runs them as `python -m`."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def parse_stage_args(
    doc: str | None,
    example: str,
    argv: list[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The arguments every stage takes (--params, repeatable --set KEY=VALUE), plus any `extra` adds."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="path to params.yaml")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help=f"override a parameter, e.g. --set {example}",
    )
    if extra is not None:
        extra(parser)
    return parser.parse_args(argv)
