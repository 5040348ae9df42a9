"""Per-question results -> the contract's flat metrics (lorag.evaluation.names) with intervals and reasons.

Every cell is the mean over questions with its bootstrap interval; every comparison a gate makes is a paired
difference over the same questions with its interval. A value that cannot be computed is NaN and its name goes
to `missing` with the reason; nothing is dropped and nothing becomes 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lorag.evaluation.bootstrap import bootstrap_ci, paired_diff_ci
from lorag.evaluation.names import PAIRS, RETRIEVAL_METRICS, ROW_METRICS, ci_names, diff_metric, retrieval_metric

NAN = float("nan")

_UNDEFINED = {
    "citation_validity": "no answer in this row cites a source (validity is defined only for answers that cite)",
    "groundedness": "every answer in this row is empty",
}


def _put(out: dict[str, float], missing: dict[str, str], name: str, interval: Any, why: str) -> None:
    out[name] = interval.mean
    low, high = ci_names(name)
    out[low], out[high] = interval.low, interval.high
    if math.isnan(interval.mean):
        missing[name] = why
    if math.isnan(interval.low):
        reason = why if math.isnan(interval.mean) else f"only {interval.n} question(s) with a value: no interval"
        missing[low] = missing[high] = reason


def summarize(per_row: Mapping[str, Sequence[Mapping[str, float]]], retrieval: Sequence[Mapping[str, float]] | None,
              losses: Mapping[str, float], loss_missing: Mapping[str, str], *, resamples: int, confidence: float,
              seed: int, absent: Mapping[str, str] | None = None) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, missing). `per_row[row]` holds one dict of ROW_METRICS per question, in question order; a row
    in `absent` (row -> reason) could not run: its records are empty and every metric of it is NaN."""
    absent = absent or {}
    kw = {"resamples": resamples, "confidence": confidence, "seed": seed}
    out: dict[str, float] = {}
    missing: dict[str, str] = {}
    for row, results in per_row.items():
        for m in ROW_METRICS:
            why = absent.get(row) or _UNDEFINED.get(m, "no question produced a value")
            _put(out, missing, f"{row}.{m}", bootstrap_ci([r[m] for r in results], **kw), why)
    for row in ("base", "adapter"):
        out[f"{row}.loss"] = losses.get(row, NAN)
        if math.isnan(out[f"{row}.loss"]):
            missing[f"{row}.loss"] = loss_missing.get(row, "not measured")
    for m in RETRIEVAL_METRICS:
        values = [r[m] for r in retrieval] if retrieval else []
        why = absent.get("base_rag") or ("no RAG row was evaluated" if not retrieval else
                                         "no question has a gold document")
        _put(out, missing, retrieval_metric(m), bootstrap_ci(values, **kw), why)
    for a, b in PAIRS:
        if a not in per_row or b not in per_row:
            continue
        for m in ROW_METRICS:
            why = absent.get(a) or absent.get(b) or f"no question has {m} defined in both {a} and {b}"
            if a in absent or b in absent:
                diff = bootstrap_ci([])
            else:
                diff = paired_diff_ci([r[m] for r in per_row[a]], [r[m] for r in per_row[b]], **kw)
            _put(out, missing, diff_metric(a, b, m), diff, why)
    return out, missing


def raft_check(metrics: Mapping[str, float]) -> dict[str, Any]:
    """The RAFT paper's failure mode: retrieval makes the fine-tuned model worse (adapter + RAG < adapter) on F1."""
    diff = metrics.get("diff.adapter_rag_vs_adapter.f1", NAN)
    high = metrics.get("diff.adapter_rag_vs_adapter.f1.ci_high", NAN)
    return {"adapter_rag_below_adapter": bool(diff < 0), "beyond_noise": bool(high < 0), "f1_diff": diff}
