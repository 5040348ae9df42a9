"""The RAG app pyfunc registered with the adapter, served for real: `mlflow models serve --env-manager local` on
loopback answers a POSTed question with the passages it retrieved and its cited sources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lorag.config import load_params
from support.behavior import free_port

pytestmark = pytest.mark.slow  # starts a model server


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def _wait(url: str, proc: subprocess.Popen, log: Path, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"model server exited {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"model server not ready after {timeout} s:\n{log.read_text()[-4000:]}")


def test_served_rag_app_answers_with_cited_sources(rag_project: Path, tmp_path: Path) -> None:
    import mlflow

    from lorag.retrieval.search import citation, search

    params = load_params(rag_project / "params.yaml")
    client = mlflow.MlflowClient(params.tracking_uri)
    app_version = client.get_model_version(params.mlflow.registered_model, "1").tags["lorag.rag_app_version"]
    name = f"{params.mlflow.registered_model}-rag"
    assert client.get_model_version(name, app_version).tags["lorag.adapter_version"] == "1"
    port = free_port()
    log = tmp_path / "serve.log"
    # The server execs `uvicorn` by name: the venv's bin must be on PATH, as it is for an activated venv.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": params.tracking_uri, "OMP_NUM_THREADS": "1", "PATH": path}
    argv = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{name}/{app_version}",
            "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait(f"http://127.0.0.1:{port}/ping", proc, log)
        question = "How many volunteer hours a year does a full member owe the Cooperative?"
        reply = _post(f"http://127.0.0.1:{port}/invocations", {"inputs": [question]})
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # only the server this test started (its own process group)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    (answer,) = reply["predictions"]
    expected = [citation(h) for h in search(params, question)]
    assert [p["citation"] for p in answer["passages"]] == expected[: len(answer["passages"])] and expected
    assert answer["question"] == question and isinstance(answer["answer"], str)
    cited_ok = {c["citation"] for c in answer["citations"] if c["valid"]}
    assert set(answer["sources"]) == cited_ok and cited_ok <= set(expected)
    assert answer["invalid_citations"] == [c["n"] for c in answer["citations"] if not c["valid"]]
