"""Answer, citation, retrieval and interval metrics on hand-made cases whose values are known by hand."""

import math

import pytest

from lorag.evaluation.bootstrap import bootstrap_ci, paired_diff_ci
from lorag.evaluation.metrics import (
    answer_body, check_answer_citations, exact_match, groundedness, nan_mean, normalize_answer, retrieval_scores,
    token_f1,
)

LABELS = {1: "cooperative/membership.md > Fees", 2: "harvest/extraction.md > Moisture"}
TEXTS = {1: "The annual fee for a full member is 45 EUR.", 2: "Honey above 18 percent moisture ferments."}


def test_squad_normalisation_and_exact_match():
    assert normalize_answer("The  Annual fee, is 45 EUR!") == "annual fee is 45 eur"
    assert exact_match("the 45 EUR.", "45 eur") == 1.0
    assert exact_match("45 EUR a year", "45 EUR") == 0.0


def test_token_f1_known_values():
    # pred tokens {annual, fee, 45}, gold {fee, is, 45, eur}: common 2, P 2/3, R 2/4 -> F1 = 4/7
    assert token_f1("annual fee 45", "the fee is 45 EUR") == pytest.approx(4 / 7)
    assert token_f1("nothing alike", "45 EUR") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("a the", "45") == 0.0  # articles only -> empty prediction


def test_answer_body_drops_the_sources_block():
    out = "It is 45 EUR.\n\nSources:\n[1] cooperative/membership.md > Fees"
    assert answer_body(out) == "It is 45 EUR." and answer_body("no sources here") == "no sources here"


def test_citation_checks_valid_gold_answer():
    out = "The fee is 45 EUR.\n\nSources:\n[1] cooperative/membership.md > Fees"
    c = check_answer_citations(out, LABELS, TEXTS, ["cooperative/membership.md"])
    assert (c.cited, c.cited_format, c.citation_validity, c.citation_accuracy) == ([1], 1.0, 1.0, 1.0)
    # body tokens: fee is 45 eur -> all four in passage 1
    assert c.groundedness == 1.0


def test_invalid_number_is_invalid_and_not_gold():
    out = "The fee is 99 EUR.\n\nSources:\n[3] made/up.md\n[2] harvest/extraction.md > Moisture"
    c = check_answer_citations(out, LABELS, TEXTS, ["cooperative/membership.md"])
    assert c.cited == [3, 2] and c.citation_validity == 0.0 and c.citation_accuracy == 0.0
    # body tokens fee, is, 99, eur; passage 2 (the only valid one) holds none of them
    assert c.groundedness == 0.0


def test_uncited_answer_validity_is_nan_not_zero():
    c = check_answer_citations("The fee is 45 EUR.", LABELS, TEXTS, ["cooperative/membership.md"])
    assert c.cited_format == 0.0 and math.isnan(c.citation_validity) and c.citation_accuracy == 0.0
    assert c.groundedness == 0.0
    # without RAG there is no context: any citation is invalid
    c = check_answer_citations("45 EUR.\n\nSources:\n[1] x.md", {}, {}, ["cooperative/membership.md"])
    assert c.citation_validity == 0.0 and c.citation_accuracy == 0.0


def test_groundedness_partial_and_empty():
    assert groundedness("fee is 12 EUR", [TEXTS[1]]) == pytest.approx(3 / 4)
    assert math.isnan(groundedness("", [TEXTS[1]]))


def test_retrieval_scores_known_values():
    s = retrieval_scores(["b.md", "a.md", "a.md", "c.md"], ["a.md"], k=5)
    assert s["recall_at_k"] == 1.0 and s["mrr"] == 0.5
    assert s["ndcg_at_10"] == pytest.approx(1 / math.log2(3))  # one relevant doc at rank 2
    assert retrieval_scores(["b.md"], ["a.md"], k=5) == {"recall_at_k": 0.0, "mrr": 0.0, "ndcg_at_10": 0.0}
    assert retrieval_scores([], ["a.md"], k=5)["mrr"] == 0.0
    # two gold docs, one found at rank 1 within k=1
    s = retrieval_scores(["a.md", "b.md"], ["a.md", "b.md"], k=1)
    assert s["recall_at_k"] == 0.5 and s["mrr"] == 1.0 and s["ndcg_at_10"] == pytest.approx(1.0)
    assert all(math.isnan(v) for v in retrieval_scores(["a.md"], [], k=5).values())


def test_nan_mean_skips_undefined():
    assert nan_mean([1.0, float("nan"), 0.0]) == 0.5 and math.isnan(nan_mean([float("nan")]))


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    a, b = bootstrap_ci(values, seed=7), bootstrap_ci(values, seed=7)
    assert a == b and a.low <= a.mean == 0.625 <= a.high and a.n == 8
    constant = bootstrap_ci([0.4] * 5)
    assert constant.low == constant.high == pytest.approx(0.4)


def test_bootstrap_nan_handling():
    assert bootstrap_ci([float("nan")] * 3).n == 0 and math.isnan(bootstrap_ci([]).mean)
    one = bootstrap_ci([float("nan"), 0.5])
    assert one.mean == 0.5 and math.isnan(one.low) and math.isnan(one.high)


def test_paired_difference_uses_questions_defined_on_both_sides():
    d = paired_diff_ci([1.0, 1.0, float("nan"), 0.5], [0.0, 0.5, 1.0, 0.5])
    assert d.n == 3 and d.mean == pytest.approx(0.5) and d.low <= 0.5 <= d.high
    same = paired_diff_ci([0.2, 0.7, 0.1], [0.2, 0.7, 0.1])
    assert same.mean == same.low == same.high == 0.0
    with pytest.raises(ValueError, match="aligned"):
        paired_diff_ci([1.0], [1.0, 0.0])
