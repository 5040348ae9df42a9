"""The evaluation contract's metric names (lorag.evaluation.names): what gates accept and refuse."""

import pytest

from lorag.evaluation.names import KNOWN_METRIC, ci_names, diff_metric, is_known_metric, row_metric


@pytest.mark.parametrize("name", [
    "base.f1", "adapter_rag.exact_match", "champion_rag.citation_accuracy", "base_rag.seconds_per_answer",
    "base.loss", "adapter.loss", "retrieval.recall_at_k", "retrieval.ndcg_at_10", "retrieval.mrr.ci_low",
    "adapter_rag.f1.ci_high", "diff.adapter_vs_base.f1", "diff.adapter_rag_vs_adapter.groundedness.ci_low",
    "diff.adapter_rag_vs_champion_rag.cited_format", "diff.base_rag_vs_base.prompt_tokens.ci_high",
])
def test_contract_names_are_known(name):
    assert KNOWN_METRIC(name) and is_known_metric(name) and KNOWN_METRIC.fullmatch(name)


@pytest.mark.parametrize("name", [
    "adapter.f1x", "adapter.f", "base_rag.loss", "champion.loss", "retrieval.recall", "diff.base_vs_adapter.f1",
    "adapter.f1.ci_mid", "loss_delta", "adapter_rag.f1.ci_low.ci_high", "", "ADAPTER.f1",
])
def test_other_names_are_refused(name):
    assert not KNOWN_METRIC(name) and KNOWN_METRIC.match(name) is None


def test_builders_make_known_names():
    name = diff_metric("adapter", "champion", "f1")
    assert name == "diff.adapter_vs_champion.f1" and all(map(KNOWN_METRIC, (name, *ci_names(name))))
    assert row_metric("adapter_rag", "f1") == "adapter_rag.f1"
