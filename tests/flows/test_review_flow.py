"""The review step of the retrain flow on a real Prefect server and a real MLflow server: it pauses for a reviewer
and is resumed by `lorag approve` (CLI), by the UI's form input (reject), or times out (a recorded rejection)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.retrain import review_flow
from lorag.config import load_params
from support.promotion import good_metrics, promo_project, twin  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow


@pytest.fixture
def api_url(prefect_server, monkeypatch) -> str:
    """lorag reads PREFECT_API_URL from the environment (it never imports Prefect): export the harness's."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    monkeypatch.setenv("PREFECT_API_URL", url)
    return url


def _start(params_file: Path, version: str, *overrides: str) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(
        review_flow(version, str(params_file), list(overrides), return_state=True)), daemon=True)
    thread.start()
    return thread, out


def _wait_paused(params, version: str) -> str:
    from lorag.promotion.resume import paused_run

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = paused_run(params, version)
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no flow run paused for version {version}")


def _events(params, version: str) -> list[str]:
    from lorag.tracking.audit import read_events

    return [e.kind for e in read_events(params, version=version)]


def test_cli_approval_resumes_the_paused_flow(promo_project: Path, api_url: str) -> None:
    from lorag.cli import app
    from lorag.tracking.registry import champion_source

    params = load_params(promo_project / "params.yaml")
    version = twin(params, good_metrics(0.6))
    thread, out = _start(promo_project / "params.yaml", version)
    run_id = _wait_paused(params, version)
    result = CliRunner().invoke(app, ["approve", version, "--by", "alice", "--reason", "gates passed, read the "
                                      "answers", "--params", str(promo_project / "params.yaml")])
    assert result.exit_code == 0, result.output
    assert f"resumed flow run {run_id}" in result.output
    thread.join(180)
    (state,) = out
    assert state.is_completed(), state.message
    assert state.result()["review"] == "approved" and champion_source(params)[1] == version
    assert _events(params, version).count("approval") == 1  # the flow found it done: no second record
    status = CliRunner().invoke(app, ["status", "--json", "--params", str(promo_project / "params.yaml")])
    shown = json.loads(status.stdout)["models"]
    assert shown["champion"]["version"] == version and shown["flows"]["lorag-review"]["state"] == "COMPLETED"


def test_form_input_rejects_and_is_recorded(promo_project: Path, api_url: str) -> None:
    from lorag.promotion.resume import resume

    params = load_params(promo_project / "params.yaml")
    version = twin(params, good_metrics(0.61))
    thread, out = _start(promo_project / "params.yaml", version)
    run_id = _wait_paused(params, version)
    resume(run_id, {"decision": "reject", "reviewer": "bob", "reason": "cites the wrong page"})  # what the UI sends
    thread.join(180)
    (state,) = out
    assert state.is_completed(), state.message
    assert state.result()["review"] == "rejected"
    assert "rejection" in _events(params, version)


def test_an_unlisted_reviewer_in_the_form_is_refused(promo_project: Path, api_url: str) -> None:
    from lorag.promotion.resume import resume
    from lorag.tracking.registry import champion_source

    params = load_params(promo_project / "params.yaml")
    version = twin(params, good_metrics(0.62))
    thread, out = _start(promo_project / "params.yaml", version)
    resume(_wait_paused(params, version), {"decision": "approve", "reviewer": "mallory", "reason": "trust me"})
    thread.join(180)
    (state,) = out
    assert state.result()["review"] == "refused" and state.result()["rule"] == "unlisted_approver"
    assert champion_source(params) is None or champion_source(params)[1] != version
    assert "refused" in _events(params, version)


def test_no_review_in_time_is_a_recorded_rejection(promo_project: Path, api_url: str) -> None:
    params = load_params(promo_project / "params.yaml")
    version = twin(params, good_metrics(0.63))
    thread, out = _start(promo_project / "params.yaml", version, "promotion.approval_timeout_s=2")
    thread.join(180)
    (state,) = out
    assert state.is_failed()
    assert "timeout" in _events(params, version)


def test_cli_rejection_resumes_the_paused_flow_and_is_recorded_once(promo_project: Path, api_url: str) -> None:
    from lorag.cli import app

    params = load_params(promo_project / "params.yaml")
    version = twin(params, good_metrics(0.64))
    thread, out = _start(promo_project / "params.yaml", version)
    _wait_paused(params, version)
    result = CliRunner().invoke(app, ["reject", version, "--by", "bob", "--reason", "too verbose",
                                      "--params", str(promo_project / "params.yaml")])
    assert result.exit_code == 0 and "resumed flow run" in result.output, result.output
    thread.join(180)
    (state,) = out
    assert state.result()["review"] == "rejected"
    assert _events(params, version).count("rejection") == 1
