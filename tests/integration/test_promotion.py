"""Promotion on a real MLflow server with a real published LanceDB index: every bypass refused and recorded, the
release manifest complete, and promote -> rollback (--index) -> promote with the index searchable at each step."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from lorag.config import load_params
from support.promotion import NAN, TRAINER, good_metrics, promo_project, twin  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow


def _refusals(params):
    from lorag.tracking.audit import read_events

    return [e for e in read_events(params, kind="refused")]


def _search_ok(params, text: str) -> list[str]:
    from lorag.retrieval.search import search

    hits = search(params, text, top_k=3)
    assert hits, "the published index must answer at every step"
    return [h.doc_id for h in hits]


def test_promote_rollback_promote_round_trip(promo_project: Path) -> None:
    from lorag.index.stores import open_store, published_state
    from lorag.promotion.approvals import ApprovalRefused, ApprovalRequest
    from lorag.promotion.ledger import alias_at
    from lorag.promotion.manifest import REQUIRED
    from lorag.promotion.promote import approve, current_manifest
    from lorag.promotion.rollback import rollback
    from lorag.reindex.run import run_reindex
    from lorag.tracking.audit import read_events
    from lorag.tracking.registry import champion_source

    params = load_params(promo_project / "params.yaml")
    first_state = published_state(params)

    # first model: compared with the base only; a four-eyes approver releases it with a complete manifest
    manifest = approve(params, ApprovalRequest("1", "alice", "first release"))
    assert [k for k in REQUIRED if manifest.get(k) in (None, "", "none")] == []
    assert manifest["gate_decision"]["first_model"] and manifest["index_source_collection"] == first_state["collection"]
    assert champion_source(params) == (manifest["released_version"], "1")
    assert approve(params, ApprovalRequest("1", "alice", "again")) == current_manifest(params)  # idempotent
    assert _served_app(params) == {"champion": _app_of(params, "1"), "previous-champion": None}
    t_first = datetime.now(timezone.utc)

    # the documents change and the index is rebuilt (keep_last 1 would drop the old collection: a release protects it)
    (promo_project / "data/docs/zz-new.md").write_text("# Drone congregation\n\nDrones gather in congregation "
                                                         "areas fifteen metres above open fields.\n")
    run_reindex(params, full=True)
    with open_store(params) as store:
        assert first_state["collection"] in store.list_collections()
    second = twin(params, good_metrics(0.52))
    manifest2 = approve(params, ApprovalRequest(second, "bob", "better citations"))
    assert champion_source(params)[1] == second
    assert _served_app(params) == {"champion": _app_of(params, second), "previous-champion": _app_of(params, "1")}
    assert manifest2["docs_data_rev"] != manifest["docs_data_rev"]
    assert "zz-new.md" in _search_ok(params, "Where do drones gather in congregation areas?")

    # rollback: champion back to version 1, verified by reading back and loading; the index back to its release
    result = rollback(params, "alice", "regression reported", index=True)
    assert result["to_version"] == "1" and result["verified"] == {"alias": "champion", "version":
                                                                  manifest["released_version"], "loaded": True}
    assert champion_source(params)[1] == "1"
    assert _served_app(params) == {"champion": _app_of(params, "1"), "previous-champion": None}
    state = published_state(params)
    assert state["data_rev"] == manifest["docs_data_rev"] and state["collection"] == result["index"]["collection"]
    assert "zz-new.md" not in _search_ok(params, "Where do drones gather in congregation areas?")
    with pytest.raises(Exception, match="no previous release"):
        rollback(params, "alice", "again", index=False)

    # and forward again: the newer version is promoted once more
    approve(params, ApprovalRequest(second, "bob", "fixed upstream"))
    assert champion_source(params)[1] == second
    events = read_events(params)
    assert alias_at(events, "champion", t_first) == "1"
    assert alias_at(events, "champion", datetime.now(timezone.utc)) == second
    kinds = [e.kind for e in events]
    assert {"gate_decision", "approval", "alias_move", "rollback", "index_restore"} <= set(kinds)
    with pytest.raises(ApprovalRefused):
        approve(params, ApprovalRequest("1", "alice", "older one"))  # superseded by the champion


def _app_of(params: Any, version: str) -> str:
    """The RAG app version registered with candidate adapter `version`."""
    from lorag.tracking.rag_app import TAG_RAG_VERSION
    from lorag.tracking.registry import registry_client

    return registry_client(params).get_model_version(params.mlflow.registered_model, version).tags[TAG_RAG_VERSION]


def _served_app(params: Any) -> dict[str, str | None]:
    """For each alias of the released RAG app: the candidate app version it was copied from (None: no alias)."""
    from lorag.tracking.rag_app import TAG_SOURCE_RAG_VERSION, released_rag_app_name
    from lorag.tracking.registry import alias_version, registry_client

    client = registry_client(params)
    found = {a: alias_version(client, released_rag_app_name(params), a) for a in ("champion", "previous-champion")}
    return {a: None if v is None else v.tags[TAG_SOURCE_RAG_VERSION] for a, v in found.items()}


@pytest.mark.parametrize(("who", "metrics", "extra", "rule"), [
    ("mallory", None, {}, "unlisted_approver"),
    ("alice", None, {"trainer": "alice"}, "four_eyes"),
    ("alice", {"adapter_rag.f1": 0.01}, {}, "gates_failed"),
    ("alice", {"adapter_rag.f1": NAN}, {}, "gates_failed"),
    ("alice", {"adapter_rag.f1": 0.01}, {"override": True}, "override_not_allowed"),
    ("alice", None, {"superseded": True}, "superseded"),
], ids=["unlisted", "four-eyes", "failed-gates", "nan-metric", "override", "superseded"])
def test_every_bypass_is_refused_and_recorded(promo_project: Path, monkeypatch, who, metrics, extra, rule) -> None:
    from lorag.promotion.approvals import ApprovalRefused, ApprovalRequest
    from lorag.promotion.promote import approve

    params = load_params(promo_project / "params.yaml")
    candidate = twin(params, {**good_metrics(0.6), **(metrics or {})}, started_by=extra.get("trainer", TRAINER))
    if extra.get("superseded"):
        twin(params, good_metrics(0.6))  # a newer challenger
    before = len(_refusals(params))
    with pytest.raises(ApprovalRefused) as refused:
        approve(params, ApprovalRequest(candidate, who, "looks fine", extra.get("override", False)))
    assert refused.value.rule == rule
    recorded = _refusals(params)
    assert len(recorded) == before + 1 and recorded[-1].version == candidate and recorded[-1].actor == who


def test_a_release_with_a_missing_link_is_refused(promo_project: Path) -> None:
    import mlflow

    from lorag.promotion.approvals import ApprovalRequest
    from lorag.promotion.manifest import MissingLink
    from lorag.promotion.promote import approve

    params = load_params(promo_project / "params.yaml")
    candidate = twin(params, good_metrics(0.7))
    mlflow.MlflowClient(params.tracking_uri).set_model_version_tag(
        params.mlflow.registered_model, candidate, "lorag.examples_data_rev", "none")
    with pytest.raises(MissingLink) as missing:
        approve(params, ApprovalRequest(candidate, "alice", "ship it"))
    assert missing.value.missing == ["examples_data_rev"]
    assert _refusals(params)[-1].version == candidate


def test_cli_review_status_and_history(promo_project: Path) -> None:
    import json

    from typer.testing import CliRunner

    from lorag.cli import app

    params_file = str(promo_project / "params.yaml")
    params = load_params(params_file)
    candidate = twin(params, good_metrics(0.8))
    runner = CliRunner()
    shown = runner.invoke(app, ["review", "--json", "--params", params_file])
    assert shown.exit_code == 0, shown.output
    review = json.loads(shown.stdout)
    assert review["version"] == candidate and review["decision"]["approved"] is True
    assert review["lineage"]["started_by"] == TRAINER and review["metrics"]["adapter_rag.f1"][0] == 0.8
    refused = runner.invoke(app, ["approve", candidate, "--by", TRAINER, "--reason", "mine", "--params", params_file])
    assert refused.exit_code == 1 and "refused" in refused.output
    done = runner.invoke(app, ["approve", candidate, "--by", "bob", "--reason", "best f1", "--params", params_file])
    assert done.exit_code == 0, done.output
    status = runner.invoke(app, ["status", "--json", "--params", params_file])
    assert status.exit_code == 0, status.output
    models = json.loads(status.stdout)["models"]
    assert models["champion"]["version"] == candidate and models["champion"]["approved_by"] == "bob"
    assert models["champion"]["metrics"]["adapter_rag.f1"] == 0.8
    history = runner.invoke(app, ["history", "--json", "--at", "2999-01-01T00:00:00Z", "--params", params_file])
    assert history.exit_code == 0 and json.loads(history.stdout)["champion"] == candidate
    text = runner.invoke(app, ["history", "--params", params_file]).stdout
    assert f"approval      bob        v{candidate}" in text and "refused" in text


def test_status_reads_the_registry_without_creating_it(tmp_path: Path) -> None:
    from lorag.promotion.status import model_status

    (tmp_path / "params.yaml").write_text("mlflow:\n  tracking_uri: sqlite:///.lorag/mlflow.db\n")
    assert model_status(load_params(tmp_path / "params.yaml")) == {"champion": None, "challenger": None}
    assert not (tmp_path / ".lorag").exists()
