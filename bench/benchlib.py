"""Helpers shared by the knowledge-track benchmarks: thread settings, a throwaway lorag project, result files.

Benchmarks only; the library never imports this. Import it before torch so the thread settings take effect.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SHARED_DATA = REPO.parent / "shared" / "data"  # default data location beside the checkout (bench only)


def set_threads(threads: int) -> int:
    """Pin math libraries to `threads` before torch/numpy start their pools (2 cores shared by many here)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    from lorag.env import apply_offline_defaults

    apply_offline_defaults()
    return threads


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "omp_num_threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0),
        "load_average_at_start": load,
        "gpu": False,
    }


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {root} failed: {proc.stderr.strip()}")
    return proc.stdout


def make_project(root: Path, params: dict[str, Any], docs_dir: str = "data/docs") -> Path:
    """A lorag project folder: git repo (with identity), params.yaml, .gitignore and an empty docs folder."""
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    merged = {"corpus": {"docs_dir": docs_dir}, **params}
    (root / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")
    (root / ".gitignore").write_text(".lorag/\nmlruns/\n", encoding="utf-8")
    (root / docs_dir).mkdir(parents=True, exist_ok=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "config", "user.name", "bench")
    git(root, "config", "user.email", "bench@localhost")
    git(root, "config", "commit.gpgsign", "false")
    git(root, "add", "params.yaml", ".gitignore")
    git(root, "commit", "--quiet", "-m", "bench project")
    return root


def percentiles(values: list[float]) -> dict[str, float]:
    import numpy as np

    arr = np.asarray(values, dtype=float) * 1000.0
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "p99_ms": round(float(np.percentile(arr, 99)), 2),
        "mean_ms": round(float(arr.mean()), 2),
    }


def write_result(name: str, payload: dict[str, Any], out: Path | None = None) -> Path:
    """bench/results/<name>.json, with the command line and when it ran."""
    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **payload,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path
