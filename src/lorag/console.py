"""The console tables and summaries are printed on."""

from __future__ import annotations

import os
import sys
from typing import Any

# Rich lays tables out for 80 columns when stdout is not a terminal (a log file, CI, `| less`), which cuts the
# evaluation matrix's columns to "…"; logs have no width to respect, so they get this one.
PIPED_WIDTH = 200


def output_console() -> Any:
    """A rich Console on stdout: the terminal's width, or PIPED_WIDTH when piped and $COLUMNS is not set."""
    from rich.console import Console

    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console()
    return Console(width=PIPED_WIDTH)
