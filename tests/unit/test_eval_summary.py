"""Per-question results -> contract metrics: known means, paired differences, NaN always with its reason."""

import math

import pytest

from lorag.evaluation.names import KNOWN_METRIC, ROW_METRICS
from lorag.evaluation.summary import raft_check, summarize

NAN = float("nan")


def _rec(f1: float, validity: float = NAN) -> dict:
    base = dict.fromkeys(ROW_METRICS, 0.0)
    return {**base, "f1": f1, "citation_validity": validity, "prompt_tokens": 10.0}


def _summ(per_row, retrieval=None, absent=None):
    return summarize(per_row, retrieval, {"base": 2.0, "adapter": 1.5}, {}, resamples=200, confidence=0.95, seed=0,
                     absent=absent)


def test_means_and_paired_differences():
    per_row = {"base": [_rec(0.0), _rec(0.5)], "base_rag": [_rec(0.5), _rec(0.5)],
               "adapter": [_rec(1.0, 1.0), _rec(0.5, 0.0)], "adapter_rag": [_rec(1.0, 1.0), _rec(1.0, 1.0)]}
    retrieval = [{"recall_at_k": 1.0, "mrr": 0.5, "ndcg_at_10": 0.6}, {"recall_at_k": 0.0, "mrr": 0.0,
                                                                      "ndcg_at_10": 0.0}]
    m, missing = _summ(per_row, retrieval)
    assert m["base.f1"] == 0.25 and m["adapter_rag.f1"] == 1.0 and m["retrieval.mrr"] == 0.25
    assert m["diff.adapter_vs_base.f1"] == 0.5 and m["diff.adapter_rag_vs_adapter.f1"] == 0.25
    assert m["adapter.citation_validity"] == 0.5 and m["base.loss"] == 2.0 and m["adapter.loss"] == 1.5
    assert all(KNOWN_METRIC(k) for k in m)
    # no row cites anything in base: validity undefined -> NaN with the reason, its diffs too
    assert math.isnan(m["base.citation_validity"]) and "cites" in missing["base.citation_validity"]
    assert math.isnan(m["diff.adapter_vs_base.citation_validity"])
    assert {k for k, v in m.items() if math.isnan(v)} == set(missing)


def test_absent_rag_rows_are_nan_with_the_fix():
    per_row = {"base": [_rec(0.2), _rec(0.4)], "base_rag": [], "adapter": [_rec(0.6), _rec(0.4)], "adapter_rag": []}
    why = "no index is published as 'docs': run `lorag reindex`"
    m, missing = _summ(per_row, None, {"base_rag": why, "adapter_rag": why})
    assert m["adapter.f1"] == pytest.approx(0.5)
    for name in ("adapter_rag.f1", "base_rag.prompt_tokens", "retrieval.ndcg_at_10", "diff.adapter_rag_vs_adapter.f1",
                 "diff.adapter_rag_vs_base_rag.f1.ci_low"):
        assert math.isnan(m[name]) and missing[name] == why
    assert not math.isnan(m["diff.adapter_vs_base.f1"])


def test_raft_flag():
    assert raft_check({"diff.adapter_rag_vs_adapter.f1": -0.2, "diff.adapter_rag_vs_adapter.f1.ci_high": -0.05}) == \
        {"adapter_rag_below_adapter": True, "beyond_noise": True, "f1_diff": -0.2}
    flag = raft_check({"diff.adapter_rag_vs_adapter.f1": -0.1, "diff.adapter_rag_vs_adapter.f1.ci_high": 0.02})
    assert flag["adapter_rag_below_adapter"] and not flag["beyond_noise"]
    assert not raft_check({"diff.adapter_rag_vs_adapter.f1": NAN})["adapter_rag_below_adapter"]
