"""The RAG x fine-tune evaluation matrix of one adapter version on a frozen question set.

Rows: `base` (no adapter, no retrieval), `base_rag`, `adapter`, `adapter_rag`, and with a champion `champion`,
`champion_rag`. Retrieval runs once per question and every RAG row gets the same passages in its prompt (the
training prompt format); non-RAG rows get the bare question. Greedy generation with one base model loaded once and
the adapters attached by name. Metrics: lorag.evaluation.metrics per answer, lorag.evaluation.summary per row,
named by the contract in lorag.evaluation.names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorag.evaluation.names import BASE_ROWS, CHAMPION_ROWS

if TYPE_CHECKING:
    from lorag.answer.generate import AnswerModel
    from lorag.config import Params
    from lorag.evaluation.questions import Question, QuestionSet
    from lorag.tracking.adapters import ResolvedModel

# row -> (adapter slot, with retrieval); slot None = the base model alone
ROW_SETUP = {"base": (None, False), "base_rag": (None, True), "adapter": ("adapter", False),
             "adapter_rag": ("adapter", True), "champion": ("champion", False), "champion_rag": ("champion", True)}


@dataclass
class EvalMatrix:
    version: str
    champion_version: str | None
    rows: list[str]
    question_set_hash: str
    questions: list[dict[str, Any]]
    per_question: list[dict[str, Any]]  # one record per (question, row): answer, citations, metrics, cost
    metrics_: dict[str, float]
    missing: dict[str, str]
    raft: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    run_id: str | None = None  # the MLflow evaluation run, once logged

    def metrics(self) -> dict[str, float]:
        """Flat contract names -> value (NaN where `missing` says why)."""
        return dict(self.metrics_)

    def to_dict(self) -> dict[str, Any]:
        """What eval_matrix.json holds: {metrics, missing, question_set_hash, rows, ...}."""
        return {"version": self.version, "champion_version": self.champion_version, "rows": self.rows,
                "question_set_hash": self.question_set_hash, "questions": len(self.questions),
                "metrics": {k: (None if math.isnan(v) else v) for k, v in self.metrics_.items()},
                "missing": self.missing, "raft_failure": self.raft, "notes": self.notes, "run_id": self.run_id}


def _answer_record(q: Question, row: str, hits: list, gen: Any) -> dict[str, Any]:
    from lorag.answer.ask import resolve_citations
    from lorag.answer.format import citation
    from lorag.evaluation.metrics import answer_body, check_answer_citations, exact_match, token_f1

    labels = {i: citation(h) for i, h in enumerate(hits, 1)}
    texts = {i: h.text for i, h in enumerate(hits, 1)}
    check = check_answer_citations(gen.text, labels, texts, q.gold_docs)
    body = answer_body(gen.text)
    sources = [c.citation if c.valid else f"[{c.n}] INVALID" for c in resolve_citations(gen.text, hits)]
    return {"question_id": q.id, "question": q.question, "configuration": row, "gold_answer": q.answer,
            "answer": body, "cited_sources": "; ".join(sources), "correct": bool(exact_match(body, q.answer)),
            "exact_match": exact_match(body, q.answer), "f1": token_f1(body, q.answer),
            "cited_format": check.cited_format, "citation_validity": check.citation_validity,
            "citation_accuracy": check.citation_accuracy, "groundedness": check.groundedness,
            "prompt_tokens": float(gen.prompt_tokens), "generated_tokens": float(gen.generated_tokens),
            "seconds_per_answer": gen.seconds, "context_passages": len(hits)}


def run_rows(params: Params, qs: QuestionSet, model: AnswerModel, slots: dict[str, str | None],
             rows: list[str]) -> tuple[dict[str, list[dict]], list[dict[str, float]]]:
    """Generate every (question, row); returns per-row records (question order) and per-question retrieval."""
    from lorag.answer.ask import build_prompt, retrieve
    from lorag.evaluation.metrics import retrieval_scores

    k = params.evaluation.top_k or params.search.top_k
    per_row: dict[str, list[dict]] = {row: [] for row in rows}
    retrieval: list[dict[str, float]] = []
    any_rag = any(ROW_SETUP[row][1] for row in rows)
    for q in qs.questions:
        hits = retrieve(params, q.question, k) if any_rag else []
        if any_rag:
            retrieval.append(retrieval_scores([h.doc_id for h in hits], q.gold_docs, k))
        for row in rows:
            slot, rag = ROW_SETUP[row]
            used = hits if rag else []
            gen = model.generate(build_prompt(q.question, used), slots.get(slot) if slot else None,
                                 params.evaluation.max_new_tokens)
            per_row[row].append(_answer_record(q, row, used, gen))
    return per_row, retrieval


def eval_losses(params: Params, model: AnswerModel, adapter: str) -> tuple[dict[str, float], dict[str, str]]:
    """base.loss / adapter.loss on the examples' eval split (adapter_eval's measurement), or the reason why not."""
    from lorag.evaluation.adapter_eval import eval_examples_path, response_loss
    from lorag.training.data import load_examples

    path = eval_examples_path(params)
    if not path.is_file():
        why = f"no eval split at {path}: run the validate_examples stage (or lorag train) first"
        return {}, {"base": why, "adapter": why}
    examples = load_examples(path)
    out: dict[str, float] = {}
    for row, name in (("base", None), ("adapter", adapter)):
        with model.using(name):
            out[row], _, _ = response_loss(model.model, model.tokenizer, examples, params.train.max_seq_len,
                                           params.adapter_eval.batch_size)
    return out, {}


def _absent_rows(params: Params, rows: list[str]) -> dict[str, str]:
    """RAG rows cannot run without a published index: each is recorded as missing with the fix."""
    from lorag.index.stores import published_state

    if published_state(params) is not None:
        return {}
    why = f"no index is published as '{params.index.name}': run `lorag reindex`, then evaluate again"
    return {row: why for row in rows if ROW_SETUP[row][1]}


def evaluate_matrix(params: Params, qs: QuestionSet, candidate: ResolvedModel,
                    champion: ResolvedModel | None = None) -> EvalMatrix:
    """Evaluate `candidate` (and `champion` beside it) on `qs` in every configuration."""
    from lorag.answer.ask import load_for
    from lorag.evaluation.summary import raft_check, summarize

    if candidate.adapter_dir is None:
        raise ValueError("the matrix compares an adapter with its base model: pass an adapter version, not base")
    model, name = load_for(params, candidate)
    slots: dict[str, str | None] = {"adapter": name}
    rows = list(BASE_ROWS)
    if champion is not None:
        slots["champion"] = load_for(params, champion)[1]
        rows += list(CHAMPION_ROWS)
    absent = _absent_rows(params, rows)
    from lorag.drift.querylog import suppressed

    with suppressed():  # the question set is not user traffic: keep it out of the drift query log
        per_row, retrieval = run_rows(params, qs, model, slots, [r for r in rows if r not in absent])
    per_row.update({row: [] for row in absent})
    losses, loss_missing = eval_losses(params, model, name)
    ev = params.evaluation
    metrics, missing = summarize({r: per_row[r] for r in rows}, retrieval or None, losses, loss_missing,
                                 resamples=ev.bootstrap_resamples, confidence=ev.confidence, seed=ev.seed,
                                 absent=absent)
    records = [r for row in rows for r in per_row[row]]
    notes = [f"{qs.dropped_trained} question(s) left out: their gold document was used in training"] \
        if qs.dropped_trained else []
    notes += [f"{row}: {why}" for row, why in absent.items()]
    return EvalMatrix(candidate.version or "base", champion.version if champion else None, rows, qs.hash,
                      qs.records(), records, metrics, missing, raft_check(metrics), notes)


def write_matrix(matrix: EvalMatrix, path: Path) -> Path:
    """eval_matrix.json (DVC reads it as a metrics file)."""
    from lorag.evaluation.adapter_eval import write_metrics_file

    return write_metrics_file(matrix.to_dict(), path)
