"""`lorag serve`'s processes: a local Prefect server on loopback (when PREFECT_API_URL is unset) and the runner
that registers the deployments and runs them (`python -m flows.deployments serve`), started and stopped in order.

No Prefect import here: the server and the runner are child processes. Each is started in its own session, so a
Ctrl-C in the terminal reaches only `lorag serve`, which then stops the runner first (a runner whose server is
gone ignores SIGTERM) and the server last, each by the PID recorded at start, nothing else.
The server keeps its state (SQLite database, settings) under the project's .lorag/prefect, not the home folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lorag.events import api_healthy

if TYPE_CHECKING:
    from lorag.config import Params

RUNNER_POLL_S = "2"  # Prefect's default is 10 s: a triggered re-index would wait up to that long to start


class ServeError(RuntimeError):
    """The Prefect server or the runner could not be started."""


def prefect_home(params: Params) -> Path:
    return params.root / ".lorag" / "prefect"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flows_root(params: Params) -> Path:
    """The folder holding flows/: the project's own, else the lorag source tree this code runs from."""
    import lorag

    for root in (params.root, Path(lorag.__file__).resolve().parents[2]):
        if (root / "flows" / "deployments.py").is_file():
            return root
    raise ServeError(f"no flows/deployments.py in {params.root} or next to the lorag sources: run lorag serve from "
                     "a clone of the lorag repository (flows/ holds the Prefect deployments)")


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self, grace_s: float = 20.0) -> int | None:
        """SIGINT (a clean shutdown), then SIGTERM, then SIGKILL of this child's own process group."""
        for sig, wait in ((signal.SIGINT, grace_s), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)  # its own session: the group is this child and what it started
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        return self.proc.poll()


def _spawn(name: str, cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> Child:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Child(name, proc, log)


def child_env(params: Params, api_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PREFECT_HOME", str(prefect_home(params)))
    env.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", RUNNER_POLL_S)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def start_server(params: Params, port: int | None = None, timeout_s: float = 90.0,
                 extra_env: dict[str, str] | None = None) -> tuple[Child, str]:
    """`prefect server start` on 127.0.0.1; returns the child and its API URL once healthy."""
    port = port or free_port()
    env = {**child_env(params, None), **(extra_env or {})}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    child = _spawn("prefect-server", cmd, env, params.root, prefect_home(params) / "server.log")
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise ServeError(f"the Prefect server exited with {child.proc.returncode}: see {child.log}")
        if api_healthy(api):
            return child, api
        time.sleep(0.5)
    child.stop()
    raise ServeError(f"the Prefect server was not healthy after {timeout_s:.0f} s: see {child.log}")


def start_runner(params: Params, params_file: Path, api_url: str, retrain_overrides: list[str] | None = None) -> Child:
    """The process that registers the deployments and runs their flows (Prefect's serve())."""
    cmd = [sys.executable, "-m", "flows.deployments", "serve", "--params", str(params_file)]
    for item in retrain_overrides or []:
        cmd += ["--retrain-set", item]
    return _spawn("prefect-runner", cmd, child_env(params, api_url), flows_root(params),
                  prefect_home(params) / "runner.log")


def start_watcher(params: Params, params_file: Path, api_url: str) -> Child:
    """The warm watcher (flows/watch.py): each change re-indexed in a process that keeps the stack loaded."""
    cmd = [sys.executable, "-m", "flows.watch", "--params", str(params_file)]
    return _spawn("docs-watcher", cmd, child_env(params, api_url), flows_root(params), prefect_home(params) / "watch.log")


@contextmanager
def operated(params: Params, params_file: Path, retrain_overrides: list[str] | None = None,
             watch: bool = False) -> Iterator[tuple[str, list[Child]]]:
    """Server (unless PREFECT_API_URL is set) + runner (+ watcher), yielded as (api_url, children); stopped in
    reverse order: watcher and runner first, the server last."""
    children: list[Child] = []
    api_url = os.environ.get("PREFECT_API_URL")
    try:
        if api_url:
            if not api_healthy(api_url):
                raise ServeError(f"PREFECT_API_URL={api_url} does not answer: start that server, or unset "
                                 "PREFECT_API_URL to let lorag serve start a local one")
        else:
            server, api_url = start_server(params)
            children.append(server)
        children.append(start_runner(params, params_file, api_url, retrain_overrides))
        if watch:
            children.append(start_watcher(params, params_file, api_url))
        yield api_url, children
    finally:
        for child in reversed(children):  # runner first, server last
            child.stop()


def ui_url(api_url: str) -> str:
    return api_url.removesuffix("/").removesuffix("/api")
