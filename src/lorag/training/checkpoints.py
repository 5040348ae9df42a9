"""Crash-safe training checkpoints: `run_dir/checkpoints/step-N`, complete or absent.

Every rank writes its part of `accelerator.save_state` into a hidden temp folder; rank 0 then writes
`trainer_state.json` last and renames the folder to `step-N`. A kill at any moment leaves either a complete
`step-N` or a `.tmp-*` folder that resume ignores and deletes, never a half checkpoint that looks whole.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from lorag.training.run_folder import RunFolder

STATE_FILE = "trainer_state.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")
KEEP_LAST = 2


def checkpoints_dir(run_dir: Path) -> Path:
    return RunFolder(run_dir).checkpoints


def tmp_dir(run_dir: Path, step: int) -> Path:
    return checkpoints_dir(run_dir) / f".tmp-step-{step}"


def complete_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint, oldest first."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and (p / STATE_FILE).is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> tuple[int, Path, dict[str, Any]] | None:
    """The newest complete checkpoint with its trainer state, or None for a fresh run."""
    found = complete_checkpoints(run_dir)
    if not found:
        return None
    step, path = found[-1]
    return step, path, json.loads((path / STATE_FILE).read_text(encoding="utf-8"))


def remove_partial(run_dir: Path) -> list[Path]:
    """Delete leftovers of a save that was killed (rank 0, before training starts)."""
    root = checkpoints_dir(run_dir)
    removed = [p for p in root.glob(".tmp-step-*")] if root.is_dir() else []
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed


def finalize(run_dir: Path, step: int, state: dict[str, Any]) -> Path:
    """Rank 0, after every rank finished save_state into tmp_dir: mark complete, publish, prune old ones."""
    tmp = tmp_dir(run_dir, step)
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    final = checkpoints_dir(run_dir) / f"step-{step}"
    if final.exists():  # a re-run after a resume reached the same step again: the new one wins
        shutil.rmtree(final)
    tmp.rename(final)
    for _, old in complete_checkpoints(run_dir)[:-KEEP_LAST]:
        shutil.rmtree(old, ignore_errors=True)
    return final
