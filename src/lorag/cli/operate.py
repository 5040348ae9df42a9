"""Operating commands: `lorag serve`, `lorag schedule`, `lorag watch`, `lorag drift`.

They start processes and watch folders; the Prefect parts run in child processes (`python -m flows.deployments`),
so this module, like the rest of the library, never imports Prefect.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from lorag.cli.common import ParamsOpt, SetOpt, cli_params, fail


def _params_file(params_path: Optional[Path]) -> Path:
    file = Path(params_path) if params_path else Path.cwd() / "params.yaml"
    return (file / "params.yaml" if file.is_dir() else file).resolve()


def _serve_record(params) -> Path:  # type: ignore[no-untyped-def]
    from lorag.operate import prefect_home

    return prefect_home(params) / "serve.json"


def _api_url(params) -> str | None:  # type: ignore[no-untyped-def]
    """PREFECT_API_URL, else the server a running `lorag serve` of this project started."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    record = _serve_record(params)
    return json.loads(record.read_text())["api_url"] if record.is_file() else None


def serve(
    params_path: ParamsOpt = None,
    retrain_set: Annotated[Optional[list[str]], typer.Option(
        "--retrain-set", help="override a param for deployed retrains only, e.g. train.max_steps=20")] = None,
    watch: Annotated[bool, typer.Option(
        "--watch/--no-watch", help="also watch the documents folder and re-index each change in a warm process")] = True,
) -> None:
    """Run the whole system: a local Prefect server (unless PREFECT_API_URL is set), the deployments (re-index on
    a schedule and on document changes, retrain on a cadence and on drift, the drift monitor), until Ctrl-C.

    With --watch (the default) edits to the documents are re-indexed within seconds as flow runs of a warm
    process; `lorag watch` elsewhere sends lorag.docs.changed to the deployment instead.

    Examples:
      lorag serve
      lorag serve --no-watch
      PREFECT_API_URL=http://prefect:4200/api lorag serve
    """
    import signal
    import time

    from lorag.operate import ServeError, operated, ui_url

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM (docker stop, systemd) both stop in order. Also un-ignores SIGINT when started in the
    # background (where the shell ignores it): the children inherit a default SIGINT and can stop cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    params = cli_params(params_path, None)
    record = _serve_record(params)
    try:
        with operated(params, _params_file(params_path), retrain_set, watch) as (api_url, children):
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps({"api_url": api_url, "pids": {c.name: c.proc.pid for c in children}}))
            typer.echo(f"Prefect UI: {ui_url(api_url)}   (API {api_url})")
            typer.echo(f"logs: {', '.join(str(c.log) for c in children)}")
            typer.echo("deployments registering; `lorag schedule` lists them. Ctrl-C stops (runner, then server).")
            try:
                while all(c.proc.poll() is None for c in children):
                    time.sleep(0.5)
                dead = next(c for c in children if c.proc.poll() is not None)
                raise ServeError(f"{dead.name} exited with {dead.proc.returncode}: see {dead.log}")
            except KeyboardInterrupt:
                typer.echo("stopping: runner first, then the server ...")
    except ServeError as exc:
        fail(exc)
    finally:
        record.unlink(missing_ok=True)
    typer.echo("stopped")


def schedule(params_path: ParamsOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show what is deployed for this project: schedules, triggers, concurrency and the next run of each.

    Examples:
      lorag schedule
    """
    from lorag.operate import child_env, flows_root

    params = cli_params(params_path, None)
    api_url = _api_url(params)
    if api_url is None:
        fail(RuntimeError("no Prefect server known: start `lorag serve` (or set PREFECT_API_URL)"))
    proc = subprocess.run([sys.executable, "-m", "flows.deployments", "list", "--params", str(_params_file(params_path))],
                          cwd=flows_root(params), env=child_env(params, api_url), capture_output=True, text=True)
    if proc.returncode != 0:
        fail(RuntimeError(f"listing deployments failed: {proc.stderr.strip()[-2000:]}"))
    rows = json.loads(proc.stdout)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("nothing deployed for this project yet: `lorag serve` registers the deployments")
    for r in rows:
        typer.echo(f"{r['deployment']}\n  schedules {', '.join(r['schedules']) or '-'}   next run {r['next_run'] or '-'}"
                   f"\n  triggers  {', '.join(r['triggers']) or '-'}\n  concurrency {r['concurrency']}"
                   f"{'   PAUSED' if r['paused'] else ''}")


def watch(
    params_path: ParamsOpt = None,
    overrides: SetOpt = None,
    in_process: Annotated[bool, typer.Option(
        "--in-process", help="re-index in this process instead of sending the event to the deployments")] = False,
) -> None:
    """Watch the documents folder; each burst of edits becomes one re-index (via `lorag serve`, or --in-process).

    Examples:
      lorag watch                  (beside `lorag serve`: sends lorag.docs.changed, delivery checked)
      lorag watch --in-process     (no Prefect server: re-indexes here and logs change-to-searchable latency)
    """
    from lorag.events import EventNotDelivered
    from lorag.watch import announce, reindex_here, run_watch

    params = cli_params(params_path, overrides)
    if not params.corpus.docs_dir.is_dir():
        fail(FileNotFoundError(f"corpus.docs_dir {params.corpus.docs_dir} does not exist: create it first"))
    if in_process:
        handle = reindex_here(params)
    else:
        api_url = _api_url(params)
        if api_url is None:
            fail(RuntimeError("no Prefect server known: start `lorag serve` first (or set PREFECT_API_URL), "
                              "or use `lorag watch --in-process`"))
        handle = announce(params, api_url)
    typer.echo(f"watching {params.corpus.docs_dir} (Ctrl-C stops)")
    stop = threading.Event()
    try:
        run_watch(params, handle, stop, on_result=lambda out: typer.echo(json.dumps(out, default=str)))
    except EventNotDelivered as exc:
        fail(exc)
    except KeyboardInterrupt:
        stop.set()


def drift(
    params_path: ParamsOpt = None,
    overrides: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print the drift signals and the routing decision, without acting or recording (the monitor flow does both).

    Examples:
      lorag drift
      lorag drift --json --set monitoring.window=1
    """
    from lorag.drift.monitor import check
    from lorag.tracking.monitor import decision_json

    import contextlib

    params = cli_params(params_path, overrides)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # libraries print; stdout stays ours (--json parseable)
            result = check(params, record=False)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        fail(exc)
    if as_json:
        print(decision_json(result.signals, result.decision))
        return
    for name, s in result.signals.items():
        shown = f"{s.value:.4g}" if s.known else f"missing: {s.missing}"
        extra = "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in s.detail.items())
        typer.echo(f"{name:17s} {shown}   {extra}")
    typer.echo(f"\ndecision: {result.decision.action}   votes {result.decision.votes}")
    for line in result.decision.rationale:
        typer.echo(f"  - {line}")
