"""A real project folder for tests (git repo + params.yaml + docs) in tmp_path, as the `make_project` fixture."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

# Mirrors the project's own .gitignore for what lorag writes (remote, caches, runs), so `git status` stays clean.
_GITIGNORE = ".lorag/\nmlruns/\n"


def git(root: Path, *args: str) -> str:
    """Run git in `root`, fail the test on error, return stdout stripped."""
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"git {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout.strip()


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Factory for a project root; returns its path. Load it with `load_params(root / "params.yaml")`.

    make_project(overrides=None, *, docs=None, name="project", git=True, identity=True, initial_commit=True)
      overrides       nested dict merged over the minimal params.yaml, e.g. {"versioning": {"git_commit": False}}
      docs            {relative path under corpus.docs_dir: text}; default: three small markdown/text files
      git             `git init` the root (otherwise a plain folder)
      identity        set a repo-local user.name/email (False: the repo has none of its own)
      initial_commit  commit params.yaml and .gitignore, so HEAD exists
    The root lives at tmp_path/<name>, so tmp_path itself is free for files "outside the project".
    """

    def _make(
        overrides: dict[str, Any] | None = None,
        *,
        docs: dict[str, str] | None = None,
        name: str = "project",
        git: bool = True,
        identity: bool = True,
        initial_commit: bool = True,
    ) -> Path:
        root = tmp_path / name
        root.mkdir()
        params = merge({"corpus": {"docs_dir": "data/docs"}}, overrides or {})
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
        (root / ".gitignore").write_text(_GITIGNORE, encoding="utf-8")
        docs_dir = root / params["corpus"]["docs_dir"]
        docs_dir.mkdir(parents=True)
        if docs is None:
            docs = {
                "intro.md": "# Intro\n\nlorag keeps the index equal to the documents.\n",
                "guide/setup.md": "# Setup\n\nInstall with pip and run the demo flow.\n",
                "notes.txt": "Plain text notes that are long enough to pass validation.\n",
            }
        for rel, text in docs.items():
            (docs_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (docs_dir / rel).write_text(text, encoding="utf-8")
        if git:
            _git_init(root, identity=identity, initial_commit=initial_commit)
        return root

    return _make


def _git_init(root: Path, *, identity: bool, initial_commit: bool) -> None:
    git(root, "init", "--quiet", "--initial-branch=main")
    if identity:
        git(root, "config", "user.name", "Test User")
        git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")
    if initial_commit:
        git(root, "add", "params.yaml", ".gitignore")
        ident = () if identity else ("-c", "user.name=Setup", "-c", "user.email=setup@example.com")
        git(root, *ident, "commit", "--quiet", "-m", "project skeleton")
