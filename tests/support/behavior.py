"""Behavior-track test support: real MLflow servers (SQLite, PostgreSQL) and sample-based training projects.

The fixtures are session-scoped (a server costs ~6 s to start, the demo base model ~5 s to build) and made
session-wide by an import in tests/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.project import git, merge

REPO_ROOT = Path(__file__).resolve().parents[2]
# Tiny, single-thread training: a run is a few seconds of compute on a shared 2-core machine.
TINY_TRAIN = {"max_steps": 4, "accelerate_config": "cpu-1proc", "threads_per_process": 1, "checkpoint_every": 2,
              "batch_size": 4,
              # the demo pre-trains its base model for 600 steps; 2 tiny steps keep the path exercised here
              "tiny_model": {"pretrain_steps": 2, "pretrain_seq_len": 16}}
TINY_EVAL = {"citation_samples": 2, "max_new_tokens": 12, "batch_size": 8}
# The evaluation matrix: 6 held-out questions, short answers, fewer bootstrap resamples.
TINY_MATRIX = {"max_questions": 6, "max_new_tokens": 16, "bootstrap_resamples": 200}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"mlflow server at {url} not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_mlflow_server(workdir: Path, backend_uri: str) -> Iterator[str]:
    """`mlflow server` on loopback with one worker and no job runner (6 s instead of 40 s); yields its URL."""
    port = free_port()
    log = workdir / "mlflow-server.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", backend_uri, "--artifacts-destination", str(workdir / "artifacts")]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking + registry server on a SQLite backend; yields its http URL."""
    workdir = tmp_path_factory.mktemp("mlflow-sqlite")
    yield from run_mlflow_server(workdir, f"sqlite:///{workdir / 'mlflow.db'}")


def _pg_prefix() -> list[str]:
    """PostgreSQL refuses to run as root: run its binaries as the postgres user then."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@pytest.fixture(scope="session")
def mlflow_server_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same server on a throwaway PostgreSQL cluster; skipped (with the reason) without the binaries."""
    if not (shutil.which("initdb") and shutil.which("pg_ctl")):
        pytest.skip("PostgreSQL binaries initdb/pg_ctl are not on PATH: the PostgreSQL backend case cannot run")
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
        pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
    import psycopg2

    base = Path(tempfile.mkdtemp(prefix="lorag-pg-"))  # not pytest's tmp: that is readable by root only
    data, sock = base / "data", base / "sock"
    for d in (data, sock):
        d.mkdir()
    if os.geteuid() == 0:
        for d in (base, data, sock):
            shutil.chown(d, "postgres", "postgres")
    port = free_port()
    pg = _pg_prefix()
    subprocess.run([*pg, "initdb", "-D", str(data), "-A", "trust", "-U", "postgres"], check=True,
                   capture_output=True)
    subprocess.run([*pg, "pg_ctl", "-D", str(data), "-l", str(sock / "log"), "-w", "-o",
                    f"-p {port} -c listen_addresses=127.0.0.1 -k {sock}", "start"], check=True, capture_output=True)
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE mlflow")
        conn.close()
        workdir = tmp_path_factory.mktemp("mlflow-pg")
        yield from run_mlflow_server(workdir, f"postgresql://postgres@127.0.0.1:{port}/mlflow")
    finally:
        subprocess.run([*pg, "pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def sample_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo base model with its tokenizer trained on the sample docs (what build_base_model builds)."""
    from lorag.config import load_params
    from lorag.retrain.base_model import sample_texts
    from lorag.training.tiny_model import build_tiny_base_model

    params = load_params(REPO_ROOT / "params.yaml")
    return build_tiny_base_model(params, tmp_path_factory.mktemp("sample-base-model"), texts=sample_texts(params))




def make_behavior_project(root: Path, base_model: Path | None, overrides: dict[str, Any] | None = None,
                          prepared: bool = True) -> Path:
    """A git repo with the repo's params.yaml (tiny training), sample/, infra/accelerate and mlflow/.

    `base_model` is an already built demo model (absolute path) or None to keep params.yaml's own.
    `prepared` copies the sample splits into examples.dir and examples.clean_dir (else neither exists yet).
    """
    root.mkdir(parents=True, exist_ok=True)
    for rel in ("sample", "infra/accelerate", "mlflow"):
        shutil.copytree(REPO_ROOT / rel, root / rel, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    params = merge(params, {"train": TINY_TRAIN, "adapter_eval": TINY_EVAL, "evaluation": TINY_MATRIX})
    if base_model is not None:
        params["train"]["base_model"] = str(base_model)
    params = merge(params, overrides or {})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    (root / ".gitignore").write_text(".lorag/\nmlruns/\n__pycache__/\n", encoding="utf-8")
    if prepared:
        # The sample splits pass the examples suite (tests/data), so they go to the validated folder too.
        for folder in (params["examples"]["dir"], params["examples"]["clean_dir"]):
            (root / folder).mkdir(parents=True, exist_ok=True)
            for name in ("train.jsonl", "eval.jsonl"):
                shutil.copyfile(root / params["examples"]["sample_dir"] / name, root / folder / name)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")
    git(root, "add", "params.yaml", ".gitignore", "sample", "infra", "mlflow")
    git(root, "commit", "--quiet", "-m", "project skeleton")
    return root
