"""Placed stops for crash tests: a real SIGKILL at a known point of a run, not a simulated failure.

Tests set LORAG_PAUSE_AT="<step>:<n>@<marker file>"; the process writes the marker when it reaches that point
and sleeps, so the test can kill it exactly there. Unset (always, outside tests), a pause point costs one lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_ENV = "LORAG_PAUSE_AT"


def pause_point(name: str) -> None:
    target = os.environ.get(PAUSE_ENV)
    if target and target.split("@")[0] == name:
        Path(target.split("@")[1]).write_text(name)
        time.sleep(3600)
