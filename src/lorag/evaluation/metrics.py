"""Per-question answer and retrieval metrics, deterministic and offline.

Answers (SQuAD v1.1's normalisation: lower case, no punctuation, no articles a/an/the, single spaces):
- `exact_match`, `token_f1` against the gold answer, read from the answer body (the text above `Sources:`);
- `cited_format`: the answer ends with a `Sources:` block naming at least one `[n]` passage;
- `citation_validity`: every cited `[n]` is a passage of the prompt's context. Defined only for answers that cite
  (an answer citing nothing has no citation to be valid): NaN otherwise;
- `citation_accuracy`: the answer cites a context passage of a gold source document (0 when it cites none);
- `groundedness`: share of the answer body's tokens found in the passages it validly cites (0 when it cites
  none): a lexical proxy, not entailment.
Retrieval (ir-measures, i.e. trec_eval): recall@k, reciprocal rank and nDCG@10 of the retrieved documents against
the gold documents, one value per question. A per-question value that cannot be defined is NaN, never 0.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lorag.answer.format import SOURCES_HEADER, cited_doc_id, parse_citations

NAN = float("nan")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's normalisation (the official evaluate-v1.1.py steps, in its order)."""
    text = text.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_body(output: str) -> str:
    """The answer without its trailing `Sources:` block (what EM and F1 compare with the gold answer)."""
    head, sep, _ = output.rpartition(f"\n{SOURCES_HEADER}\n")
    return (head if sep else output).strip()


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1: harmonic mean of token precision and recall after normalisation (both empty: 1)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class CitationCheck:
    cited: list[int]  # the [n] numbers under Sources:
    cited_format: float
    citation_validity: float  # NaN when nothing is cited
    citation_accuracy: float
    groundedness: float  # NaN when the answer body is empty


def check_answer_citations(output: str, labels: Mapping[int, str], passages: Mapping[int, str],
                           gold_docs: Sequence[str]) -> CitationCheck:
    """Citation metrics of one answer. `labels`: context number -> `path > heading` (empty without RAG);
    `passages`: context number -> passage text; `gold_docs`: the gold source document paths."""
    cited = parse_citations(output)
    valid = [n for n in cited if n in labels]
    validity = (float(len(valid) == len(cited)) if cited else NAN)
    accuracy = float(any(cited_doc_id(labels[n]) in set(gold_docs) for n in valid))
    return CitationCheck(cited, float(bool(cited)), validity, accuracy,
                         groundedness(answer_body(output), [passages[n] for n in valid if n in passages]))


def groundedness(body: str, cited_texts: Sequence[str]) -> float:
    """Share of the body's normalised tokens that occur in the cited passages (NaN for an empty body)."""
    tokens = normalize_answer(body).split()
    if not tokens:
        return NAN
    support = set(normalize_answer(" ".join(cited_texts)).split())
    return sum(t in support for t in tokens) / len(tokens)


RETRIEVAL_KEYS = ("recall_at_k", "mrr", "ndcg_at_10")


def retrieval_scores(retrieved: Sequence[str], gold_docs: Sequence[str], k: int) -> dict[str, float]:
    """recall@k, reciprocal rank and nDCG@10 of one ranked list of document paths (ir-measures / trec_eval).

    Passages of the same document count once, at their best rank. No gold document: NaN (nothing to find).
    A ranking without any gold document scores 0 on all three (trec_eval leaves such a query out).
    """
    import ir_measures
    from ir_measures import RR, R, nDCG

    if not gold_docs:
        return dict.fromkeys(RETRIEVAL_KEYS, NAN)
    ranked = list(dict.fromkeys(retrieved))  # first occurrence = best rank of a document
    qrels = [ir_measures.Qrel("q", doc, 1) for doc in dict.fromkeys(gold_docs)]
    # Scores strictly decreasing with rank: trec_eval sorts by score, so ties would reorder by doc id.
    run = [ir_measures.ScoredDoc("q", doc, float(len(ranked) - i)) for i, doc in enumerate(ranked)]
    out = dict.fromkeys(RETRIEVAL_KEYS, 0.0)
    if not run:
        return out
    names = {R @ k: "recall_at_k", RR: "mrr", nDCG @ 10: "ndcg_at_10"}
    for metric in ir_measures.iter_calc(list(names), qrels, run):
        out[names[metric.measure]] = float(metric.value)
    return out


def nan_mean(values: Sequence[float]) -> float:
    """Mean of the defined values; NaN when none is defined."""
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else NAN
