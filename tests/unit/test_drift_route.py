"""Routing: the wishes of one check, and the N-of-M window over a sequence of checks."""

from __future__ import annotations

from lorag.config import MonitoringParams
from lorag.drift.route import Check, route
from lorag.drift.signals import Signal

T = MonitoringParams(window=3, required=2, max_weak_share=0.3, drift_p_value=0.01, corpus_change_share=0.3,
                     new_examples=50, min_answer_quality=0.2)


def signals(**values: float | tuple[float, dict]) -> dict[str, Signal]:
    out = {n: Signal.absent(n, "not in this case") for n in
           ("query_drift", "retrieval_health", "docs_unindexed", "corpus_change", "answer_quality", "new_data")}
    for name, v in values.items():
        value, detail = v if isinstance(v, tuple) else (v, {})
        out[name] = Signal(name, value, detail)
    return out


QUIET = signals(docs_unindexed=0, retrieval_health=0.05, query_drift=(0.001, {"p_value": 0.6}),
                corpus_change=0.01, answer_quality=0.5, new_data=3)


def test_quiet_signals_route_to_nothing():
    d = route(QUIET, [], T)
    assert d.action == "nothing" and d.wants == frozenset()
    assert any("no signal crossed" in r for r in d.rationale)


def test_missing_signals_are_named_never_counted_as_fine_or_bad():
    d = route(signals(), [], T)
    assert d.action == "nothing"
    assert sum("missing" in r for r in d.rationale) == 6


def test_one_check_is_not_enough_with_two_of_three():
    drifted = signals(**{**{k: (s.value, s.detail) for k, s in QUIET.items()}, "new_data": 80})
    d = route(drifted, [], T)
    assert d.wants == {"retrain"} and d.action == "nothing" and d.votes["retrain"] == 1
    assert route(drifted, [Check(frozenset({"retrain"}))], T).action == "retrain"


def test_weak_retrieval_reindexes_first_instead_of_retraining_on_drift():
    gap = signals(retrieval_health=0.6, query_drift=(0.2, {"p_value": 0.001}), answer_quality=0.05)
    d = route(gap, [Check(frozenset({"reindex"}))], T)
    assert d.wants == {"reindex"} and d.action == "reindex"
    assert any("knowledge gap" in r for r in d.rationale)


def test_behaviour_worse_while_retrieval_holds_retrains():
    d = route(signals(retrieval_health=0.05, answer_quality=0.1), [Check(frozenset({"retrain"}))], T)
    assert d.action == "retrain"


def test_both_tracks():
    many = signals(docs_unindexed=4, corpus_change=0.5, retrieval_health=0.1)
    d = route(many, [Check(frozenset({"reindex", "retrain"}))], T)
    assert d.action == "both" and d.tracks == {"reindex", "retrain"}


def test_n_of_m_on_a_sequence_with_flapping_and_one_run_per_episode():
    """A sequence of checks: a lone blip, then a sustained signal, which runs once, then needs N again."""
    drift = signals(retrieval_health=0.05, query_drift=(0.3, {"p_value": 0.001}))
    calm = QUIET
    sequence = [calm, drift, calm, calm, drift, drift, drift, drift, calm, drift]
    history: list[Check] = []
    actions = []
    for s in sequence:
        d = route(s, history, T)
        actions.append(d.action)
        history.append(d.as_check())
    # the blip at 1 is alone in its window; 4 and 5 are 2 of 3 -> run at 5; 6 starts a new episode (checks up
    # to the run are answered), 6 and 7 -> run at 7; 8 is calm; 9 has only itself after the run at 7 -> waits.
    assert actions == ["nothing", "nothing", "nothing", "nothing", "nothing", "retrain",
                       "nothing", "retrain", "nothing", "nothing"]


def test_a_quality_drop_against_the_recorded_evaluation_retrains_and_a_small_one_does_not():
    fell = signals(retrieval_health=0.05, answer_quality=(0.5, {"recorded": 0.62, "drop": 0.12}))
    held = signals(retrieval_health=0.05, answer_quality=(0.6, {"recorded": 0.62, "drop": 0.02}))
    assert route(fell, [], T).wants == {"retrain"}
    assert any("fell 0.120" in r for r in route(fell, [], T).rationale)
    assert route(held, [], T).wants == frozenset()
