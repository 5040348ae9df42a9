"""The evaluation contract's metric names, with no dependencies (gates and drift import this alone).

An evaluation run's metrics are flat, stable MLflow names:

- per row ``{row}.{metric}`` for ``row`` in ROWS and ``metric`` in ROW_METRICS, plus ``base.loss`` and
  ``adapter.loss`` (held-out eval loss);
- retrieval, one set shared by the RAG rows: ``retrieval.recall_at_k``, ``retrieval.mrr``, ``retrieval.ndcg_at_10``;
- paired differences ``diff.{a}_vs_{b}.{metric}`` for the pairs in PAIRS;
- every name above may carry ``.ci_low`` / ``.ci_high`` (its bootstrap confidence interval).

A metric that could not be computed is NaN and is named, with its reason, in ``EvalMatrix.missing``.

``KNOWN_METRIC`` says whether a name is one of these: call it (``KNOWN_METRIC(name) -> bool``) or use it like a
compiled regex (``KNOWN_METRIC.fullmatch(name)``, ``KNOWN_METRIC.pattern``).
"""

from __future__ import annotations

import re

BASE_ROWS = ("base", "base_rag", "adapter", "adapter_rag")
CHAMPION_ROWS = ("champion", "champion_rag")
ROWS = BASE_ROWS + CHAMPION_ROWS

ANSWER_METRICS = (
    "exact_match",
    "f1",
    "cited_format",
    "citation_accuracy",
    "citation_validity",
    "groundedness",
)
COST_METRICS = ("prompt_tokens", "generated_tokens", "seconds_per_answer")
ROW_METRICS = ANSWER_METRICS + COST_METRICS
LOSS_ROWS = ("base", "adapter")

RETRIEVAL_METRICS = ("recall_at_k", "mrr", "ndcg_at_10")

BASE_PAIRS = (
    ("adapter", "base"),
    ("adapter_rag", "base_rag"),
    ("base_rag", "base"),
    ("adapter_rag", "adapter"),
)
CHAMPION_PAIRS = (("adapter", "champion"), ("adapter_rag", "champion_rag"))
PAIRS = BASE_PAIRS + CHAMPION_PAIRS

CI_SUFFIXES = ("ci_low", "ci_high")


def row_metric(row: str, metric: str) -> str:
    """``adapter_rag`` + ``f1`` -> ``adapter_rag.f1``."""
    return f"{row}.{metric}"


def retrieval_metric(metric: str) -> str:
    """``mrr`` -> ``retrieval.mrr``."""
    return f"retrieval.{metric}"


def diff_metric(a: str, b: str, metric: str) -> str:
    """(``adapter``, ``base``, ``f1``) -> ``diff.adapter_vs_base.f1``."""
    return f"diff.{a}_vs_{b}.{metric}"


def ci_names(name: str) -> tuple[str, str]:
    """The names of a metric's bootstrap interval bounds."""
    return f"{name}.ci_low", f"{name}.ci_high"


def _alt(words) -> str:
    return "|".join(re.escape(w) for w in words)


_PAIR_WORDS = [f"{a}_vs_{b}" for a, b in PAIRS]
_PATTERN = (
    rf"(?:(?:{_alt(ROWS)})\.(?:{_alt(ROW_METRICS)})"
    rf"|(?:{_alt(LOSS_ROWS)})\.loss"
    rf"|retrieval\.(?:{_alt(RETRIEVAL_METRICS)})"
    rf"|diff\.(?:{_alt(_PAIR_WORDS)})\.(?:{_alt(ROW_METRICS)}))"
    rf"(?:\.(?:{_alt(CI_SUFFIXES)}))?"
)


class _KnownMetric:
    """Callable and regex-like: ``KNOWN_METRIC(name)`` or ``KNOWN_METRIC.fullmatch(name)``."""

    def __init__(self, pattern: str) -> None:
        self._regex = re.compile(pattern)
        self.pattern = pattern

    def __call__(self, name: str) -> bool:
        return isinstance(name, str) and self._regex.fullmatch(name) is not None

    def fullmatch(self, name: str):
        return self._regex.fullmatch(name)

    def match(self, name: str):
        # A prefix match would accept "adapter.f1x"; the contract means whole names only.
        return self._regex.fullmatch(name)

    def __repr__(self) -> str:
        return f"KNOWN_METRIC({self.pattern!r})"


KNOWN_METRIC = _KnownMetric(_PATTERN)


def is_known_metric(name: str) -> bool:
    """True when ``name`` is one of the contract's metric names."""
    return KNOWN_METRIC(name)
