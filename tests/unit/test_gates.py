"""decide() on a table of cases, and gates validated at load (a bad gate names its key before any work)."""

from __future__ import annotations

import math

import pytest

from lorag.config import ConfigError, GateParams, load_params
from lorag.promotion.gates import base_reference, decide

NAN = math.nan


def gate(**kw) -> GateParams:
    return GateParams(**{"direction": "higher", **kw})


# candidate matrix: adapter_rag.f1 0.50 (base_rag 0.30), paired diff vs base [0.12, 0.28]; vs champion [-0.01, 0.09]
CANDIDATE = {
    "adapter_rag.f1": 0.50, "base_rag.f1": 0.30, "adapter.loss": 2.0, "base.loss": 3.0,
    "diff.adapter_rag_vs_base_rag.f1": 0.20, "diff.adapter_rag_vs_base_rag.f1.ci_low": 0.12,
    "diff.adapter_rag_vs_base_rag.f1.ci_high": 0.28,
    "diff.adapter_rag_vs_champion_rag.f1": 0.04, "diff.adapter_rag_vs_champion_rag.f1.ci_low": -0.01,
    "diff.adapter_rag_vs_champion_rag.f1.ci_high": 0.09, "retrieval.ndcg_at_10": 0.7,
}
CHAMPION = {"adapter_rag.f1": 0.46, "adapter.loss": 2.1, "retrieval.ndcg_at_10": 0.7}

CASES = [
    # (id, gates, candidate overrides, champion, approved, failed checks)
    ("threshold pass", [gate(metric="adapter_rag.f1", threshold=0.4)], {}, CHAMPION, True, []),
    ("threshold fail", [gate(metric="adapter_rag.f1", threshold=0.6)], {}, CHAMPION, False, ["threshold"]),
    ("lower is better", [gate(metric="adapter.loss", direction="lower", threshold=2.5)], {}, CHAMPION, True, []),
    ("lower fails", [gate(metric="adapter.loss", direction="lower", threshold=1.5)], {}, CHAMPION, False,
     ["threshold"]),
    ("NaN fails closed", [gate(metric="adapter_rag.f1", threshold=0.0)], {"adapter_rag.f1": NAN}, CHAMPION, False,
     ["threshold"]),
    ("missing fails closed", [gate(metric="adapter_rag.citation_accuracy", threshold=0.0)], {}, CHAMPION, False,
     ["threshold"]),
    ("margin vs champion pass", [gate(metric="adapter_rag.f1", min_margin_vs_champion=0.02)], {}, CHAMPION, True, []),
    ("margin vs champion fail", [gate(metric="adapter_rag.f1", min_margin_vs_champion=0.05)], {}, CHAMPION, False,
     ["vs_champion"]),
    ("tolerated regression", [gate(metric="adapter_rag.f1", min_margin_vs_champion=-0.1)],
     {"adapter_rag.f1": 0.40}, CHAMPION, True, []),
    ("first model: vs base only", [gate(metric="adapter_rag.f1", min_margin_vs_champion=0.5, min_margin_vs_base=0.1)],
     {}, None, True, []),
    ("vs base fail", [gate(metric="adapter_rag.f1", min_margin_vs_base=0.25)], {}, None, False, ["vs_base"]),
    ("champion metric NaN fails", [gate(metric="adapter_rag.f1", min_margin_vs_champion=0.0)], {},
     {"adapter_rag.f1": NAN}, False, ["vs_champion"]),
    ("beyond noise vs base pass", [gate(metric="adapter_rag.f1", min_margin_vs_base=0.1, beyond_noise=True)], {},
     CHAMPION, True, []),
    ("within noise vs champion", [gate(metric="adapter_rag.f1", min_margin_vs_champion=0.0, beyond_noise=True)], {},
     CHAMPION, False, ["vs_champion_beyond_noise"]),
    ("noise interval missing", [gate(metric="adapter_rag.f1", min_margin_vs_base=0.0, beyond_noise=True)],
     {"diff.adapter_rag_vs_base_rag.f1.ci_low": NAN}, CHAMPION, False, ["vs_base"]),
    ("no gates fails closed", [], {}, CHAMPION, False, ["gates"]),
]


@pytest.mark.parametrize(("gates", "overrides", "champion", "approved", "failed"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide(gates, overrides, champion, approved, failed):
    candidate = {**CANDIDATE, **overrides}
    decision = decide(candidate, champion, base_reference(candidate), gates)
    assert decision.approved is approved, decision.rationale
    assert [c.check for c in decision.failed] == failed
    assert decision.first_model is (champion is None)
    for criterion in decision.failed:  # every failure says what was seen and what was needed
        assert criterion.metric in criterion.detail
    assert ("refused" in decision.rationale) is (not approved)


def test_failed_criterion_carries_observed_required_and_reference():
    d = decide(CANDIDATE, CHAMPION, base_reference(CANDIDATE),
               [gate(metric="adapter_rag.f1", min_margin_vs_champion=0.05)])
    (c,) = d.failed
    assert (c.observed, c.reference) == (0.50, 0.46) and c.required == pytest.approx(0.51)


def test_evidence_hash_changes_with_the_evidence_and_decision_serialises():
    gates = [gate(metric="adapter_rag.f1", threshold=0.4)]
    a = decide(CANDIDATE, CHAMPION, None, gates)
    b = decide({**CANDIDATE, "adapter_rag.f1": 0.51}, CHAMPION, None, gates)
    assert a.evidence_hash != b.evidence_hash
    assert decide(CANDIDATE, CHAMPION, None, gates).evidence_hash == a.evidence_hash
    nan = decide({**CANDIDATE, "adapter_rag.f1": NAN}, CHAMPION, None, gates).to_dict()
    assert nan["criteria"][0]["observed"] is None and nan["failed"] == ["adapter_rag.f1:threshold"]


@pytest.mark.parametrize(("gate_yaml", "message"), [
    ("{metric: adapter_rag.f2, direction: higher, threshold: 0.1}", "not an evaluation metric"),
    ("{metric: adapter_rag.f1, direction: up, threshold: 0.1}", "direction"),
    ("{metric: adapter_rag.f1, direction: higher}", "checks nothing"),
    ("{metric: adapter_rag.f1, direction: higher, threshold: 0.1, margin: 2}", "margin"),
    ("{metric: retrieval.mrr, direction: higher, min_margin_vs_base: 0.0}", "base-model counterpart"),
    ("{metric: adapter.loss, direction: lower, min_margin_vs_base: 0.0, beyond_noise: true}", "paired differences"),
    ("{metric: adapter_rag.f1, direction: higher, threshold: 0.1, beyond_noise: true}", "needs a margin"),
])
def test_a_bad_gate_is_a_config_error_naming_the_key(tmp_path, gate_yaml, message):
    (tmp_path / "params.yaml").write_text(f"promotion:\n  gates:\n    - {gate_yaml}\n")
    with pytest.raises(ConfigError) as err:
        load_params(tmp_path / "params.yaml")
    assert "promotion.gates.0" in str(err.value) and message in str(err.value)


def test_which_version_was_champion_at_a_time():
    from datetime import timezone

    from lorag.promotion.ledger import AuditEvent, alias_at, parse_time

    def move(at: str, to: str | None, alias: str = "champion") -> AuditEvent:
        return AuditEvent("alias_move", "m", to, "alice", alias=alias, to_version=to, at=at)

    events = [move("2026-12-01T10:00:00.000000Z", "1"), move("2026-12-01T11:00:00.000000Z", "2"),
              move("2026-12-01T11:30:00.000000Z", "1", alias="previous-champion"),
              move("2026-12-01T12:00:00.000000Z", "1")]
    assert alias_at(events, "champion", parse_time("2026-12-01T09:59:59Z")) is None
    assert alias_at(events, "champion", parse_time("2026-12-01T10:30:00Z")) == "1"
    assert alias_at(events, "champion", parse_time("2026-12-01T11:45:00+00:00")) == "2"
    assert alias_at(events, "champion", parse_time("2026-12-02")) == "1"  # after the rollback
    assert parse_time("2026-12-02").tzinfo == timezone.utc
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_time("yesterday")
