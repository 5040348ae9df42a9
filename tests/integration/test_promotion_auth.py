"""Real access control: an MLflow server with its basic-auth app on loopback, credentials from the environment only.

Measured here, and the reason lorag keeps `champion` on a separate released model: a user with EDIT on a
registered model can register versions AND move its aliases, so on one model a trainer could crown their own
version. On the released model a trainer (READ by default) cannot move `champion`; an approver with MANAGE can.
A planted secret (the trainer's password) never reaches params.yaml, MLflow params, tags, artifacts or logs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from support.behavior import _stop, _wait_healthy, free_port

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "admin-pw-not-planted-0001"
SECRET = "PLANTED-s3cret-7f3a9c"  # the trainer's password: must appear nowhere lorag writes
APPROVER_PASSWORD = "approver-pw-0002"
CANDIDATES, RELEASED, AUDIT = "auth-adapter", "auth-released", "auth-audit"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    work = tmp_path_factory.mktemp("mlflow-auth")
    ini = work / "auth.ini"
    ini.write_text("[mlflow]\ndefault_permission = READ\n"
                   f"database_uri = sqlite:///{work / 'basic_auth.db'}\nadmin_username = admin\n"
                   "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_AUTH_CONFIG_PATH": str(ini),
           "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD, "MLFLOW_FLASK_SERVER_SECRET_KEY": "csrf-key-for-tests"}
    port, log = free_port(), work / "server.log"
    argv = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--host", "127.0.0.1", "--port",
            str(port), "--workers", "1", "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
            "--artifacts-destination", str(work / "artifacts")]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url, work
    finally:
        _stop(proc)  # this server only, by the PID recorded above


def _as(monkeypatch, user: str, password: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def _setup(url: str, monkeypatch) -> str:
    """As admin: users, the two models, grants. Returns the audit experiment id."""
    import mlflow
    from mlflow.server.auth.client import AuthServiceClient

    _as(monkeypatch, "admin", ADMIN_PASSWORD)
    auth, client = AuthServiceClient(url), mlflow.MlflowClient(url)
    auth.create_user("trainer", SECRET)
    auth.create_user("alice", APPROVER_PASSWORD)
    for name in (CANDIDATES, RELEASED):
        client.create_registered_model(name)
    audit = client.create_experiment(AUDIT)
    train = client.create_experiment("auth-train")
    auth.grant_user_permission("trainer", "registered_model", CANDIDATES, "EDIT")
    auth.grant_user_permission("alice", "registered_model", RELEASED, "MANAGE")
    for user in ("trainer", "alice"):
        auth.grant_user_permission(user, "experiment", audit, "EDIT")
    auth.grant_user_permission("trainer", "experiment", train, "EDIT")
    return train


def _project(tmp_path: Path, url: str) -> Path:
    params = {"mlflow": {"tracking_uri": url, "train_experiment": "auth-train", "registered_model": CANDIDATES},
              "promotion": {"approvers": ["alice"], "audit_experiment": AUDIT, "released_model": RELEASED,
                            "gates": [{"metric": "adapter.loss", "direction": "lower", "threshold": 9.0}]}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return tmp_path / "params.yaml"


def test_trainer_cannot_move_champion_and_an_approver_can(auth_server, tmp_path: Path, monkeypatch) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    from lorag.config import load_params
    from lorag.promotion.promote import _event, move_alias
    from lorag.tracking import flatten, mlflow_run
    from lorag.tracking.registry import TAG_SOURCE_VERSION, release_copy

    url, work = auth_server
    train_experiment = _setup(url, monkeypatch)
    params = load_params(_project(tmp_path, url))

    _as(monkeypatch, "trainer", SECRET)  # the trainer registers a candidate, recording params as lorag does
    with mlflow_run(params, params.mlflow.train_experiment, "train-auth") as run:
        mlflow.log_params({k: str(v) for k, v in flatten("", params).items() if k != "promotion.gates"})
        mlflow.log_text("adapter", "adapter/README.md")
    trainer = mlflow.MlflowClient(url)
    version = trainer.create_model_version(CANDIDATES, f"runs:/{run.info.run_id}/adapter", run.info.run_id).version
    trainer.set_registered_model_alias(CANDIDATES, "champion", version)  # measured: EDIT moves aliases too
    with pytest.raises(MlflowException, match="403"):
        trainer.delete_registered_model_alias(CANDIDATES, "champion")  # (deleting one needs MANAGE)
    with pytest.raises(MlflowException, match="PERMISSION_DENIED|403|Permission denied"):
        release_copy(params, trainer, str(version))  # cannot even create the released version
    _as(monkeypatch, "alice", APPROVER_PASSWORD)
    approver = mlflow.MlflowClient(url)
    released = release_copy(params, approver, str(version))
    assert approver.get_model_version(RELEASED, released).tags[TAG_SOURCE_VERSION] == str(version)

    _as(monkeypatch, "trainer", SECRET)
    with pytest.raises(MlflowException, match="PERMISSION_DENIED|403|Permission denied"):
        move_alias(params, mlflow.MlflowClient(url), "champion", released, "trainer", "crowning myself")
    _as(monkeypatch, "alice", APPROVER_PASSWORD)
    move_alias(params, mlflow.MlflowClient(url), "champion", released, "alice", "approved")
    assert mlflow.MlflowClient(url).get_model_version_by_alias(RELEASED, "champion").version == released
    _event(params, "approval", str(version), "alice", "approved")
    assert train_experiment  # (the trainer's experiment grant was used above)

    stores = [work / "mlflow.db", work / "basic_auth.db", work / "server.log", tmp_path / "params.yaml",
              *(p for p in (work / "artifacts").rglob("*") if p.is_file())]
    leaked = [str(p) for p in stores if p.exists() and SECRET.encode() in p.read_bytes()]
    assert leaked == [], f"the planted secret was written to {leaked}"
    run_data = mlflow.MlflowClient(url).get_run(run.info.run_id).data
    assert all(SECRET not in str(v) for v in (*run_data.params.values(), *run_data.tags.values()))
