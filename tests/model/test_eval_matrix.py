"""The evaluation matrix on the tiny model: four real configurations, contract names, NaN only with a reason."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lorag.config import load_params

pytestmark = pytest.mark.slow  # generates 4 x 6 answers after the session's index + training fixture


@pytest.fixture(scope="module")
def matrix_and_params(rag_project: Path):
    from lorag.retrain.evaluate import evaluate_version

    params = load_params(rag_project / "params.yaml")
    return evaluate_version(params, "challenger", log=False), params


def test_rag_rows_have_the_retrieved_passages_in_the_prompt_and_others_do_not(matrix_and_params) -> None:
    """Prompt token counts equal those of the question alone (non-RAG rows) or of the question + the passages
    search returns, in the training format (RAG rows)."""
    from lorag.answer.ask import build_prompt, retrieve
    from lorag.answer.format import chat_turns
    from lorag.answer.generate import answer_model
    from lorag.drift.querylog import suppressed
    from lorag.evaluation.questions import load_question_set

    matrix, params = matrix_and_params
    tokenizer = answer_model(params).tokenizer
    questions = {q.id: q for q in load_question_set(params).questions}

    def n_tokens(prompt: str) -> int:
        return len(tokenizer.apply_chat_template(chat_turns(prompt), add_generation_prompt=True, return_dict=True)
                   ["input_ids"])

    by = {(r["question_id"], r["configuration"]): r for r in matrix.per_question}
    for qid, q in questions.items():
        with suppressed():  # the evaluation's questions must stay out of the drift query log (test below)
            hits = retrieve(params, q.question, None)
        assert hits and "Context:\n[1] " in build_prompt(q.question, hits)
        for row in ("base_rag", "adapter_rag"):
            assert by[qid, row]["context_passages"] == len(hits)
            assert by[qid, row]["prompt_tokens"] == n_tokens(build_prompt(q.question, hits))
        for row in ("base", "adapter"):
            assert by[qid, row]["context_passages"] == 0
            assert by[qid, row]["prompt_tokens"] == n_tokens(q.question)


def test_metrics_follow_the_contract(matrix_and_params) -> None:
    from lorag.evaluation.names import BASE_PAIRS, BASE_ROWS, KNOWN_METRIC, ROW_METRICS

    matrix, params = matrix_and_params
    m = matrix.metrics()
    assert matrix.rows == list(BASE_ROWS) and matrix.champion_version is None
    assert all(KNOWN_METRIC(k) for k in m), [k for k in m if not KNOWN_METRIC(k)]
    for row in BASE_ROWS:
        for metric in ROW_METRICS:
            assert f"{row}.{metric}" in m and f"{row}.{metric}.ci_low" in m
    for a, b in BASE_PAIRS:
        assert f"diff.{a}_vs_{b}.f1.ci_high" in m
    assert {"base.loss", "adapter.loss", "retrieval.recall_at_k", "retrieval.mrr", "retrieval.ndcg_at_10"} <= m.keys()
    nan = {k for k, v in m.items() if math.isnan(v)}
    assert nan == set(matrix.missing), "every NaN has a reason and every reason names a NaN"
    assert 0.0 <= m["retrieval.recall_at_k"] <= 1.0 and m["adapter_rag.prompt_tokens"] > m["adapter.prompt_tokens"]
    assert len(matrix.per_question) == 4 * len(matrix.questions) == 4 * params.evaluation.max_questions
    assert set(matrix.raft) == {"adapter_rag_below_adapter", "beyond_noise", "f1_diff"}


def test_same_answers_same_numbers(matrix_and_params) -> None:
    """Greedy generation + a seeded bootstrap: a second run gives the same matrix (cost aside)."""
    from lorag.retrain.evaluate import evaluate_version

    first, params = matrix_and_params
    second = evaluate_version(params, "challenger", log=False)
    assert second.question_set_hash == first.question_set_hash
    stable = [k for k in first.metrics() if "seconds" not in k]
    a, b = first.metrics(), second.metrics()
    assert all((math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in stable)


def test_the_question_set_stays_out_of_the_drift_query_log(matrix_and_params) -> None:
    """The evaluation's fixed questions are not user traffic: logged, they read as a burst of new queries to the
    drift monitor's query-drift test."""
    from lorag.drift.querylog import read

    matrix, params = matrix_and_params
    asked = {q["question"] for q in matrix.questions}
    logged = {q.query for q in read(params.monitoring.query_log_path)}
    assert asked and not asked & logged


def test_drift_answer_quality_rerun_evaluates_the_version_now(rag_project: Path) -> None:
    """monitoring.rerun_evaluation: the answer-quality signal re-runs the matrix for the version (here the
    challenger, as a stand-in champion) and reports the drop from its recorded evaluation."""
    from lorag.drift.signals import answer_quality, rerun_quality
    from lorag.tracking.evaluation import read_evaluation
    from lorag.tracking.monitor import ChampionFacts

    params = load_params(rag_project / "params.yaml", ["monitoring.rerun_evaluation=true"])
    value = rerun_quality(params, "1")
    assert 0.0 <= value <= 1.0
    recorded = read_evaluation(params, "1") if _evaluated(params) else {}
    signal = answer_quality(params, ChampionFacts("1", None, None, None, recorded))
    assert signal.known and signal.value == value and signal.detail["source"] == "re-run"
    if recorded:
        assert signal.detail["drop"] == recorded[params.monitoring.answer_metric] - value


def _evaluated(params) -> bool:
    from lorag.tracking.evaluation import NoEvaluation, read_evaluation

    try:
        read_evaluation(params, "1")
        return True
    except NoEvaluation:
        return False
