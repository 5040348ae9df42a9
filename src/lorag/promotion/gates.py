"""The automated promotion gates: one pure `decide()` over recorded evaluation metrics.

Gates are data (`promotion.gates` in params.yaml, validated at load). Each gate names a metric of the evaluation
contract (lorag.evaluation.names) and checks, in order, an absolute threshold, a margin against the champion
(when one exists: the first model is compared to the base model only) and a margin against the base model (the
same row without the adapter: `adapter_rag.f1` against `base_rag.f1`). With `beyond_noise` each margin must hold
for the whole bootstrap interval of the paired per-question difference, not only for the point estimates.

Fail closed: a metric that is missing or NaN (not measured) fails its criterion; nothing defaults to 0.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import GateParams

# The row a metric is compared with: the base model's row, and the champion's row in the candidate's matrix.
BASE_ROW = {"adapter": "base", "adapter_rag": "base_rag"}
CHAMPION_ROW = {"adapter": "champion", "adapter_rag": "champion_rag"}


@dataclass(frozen=True)
class Criterion:
    """One check of one gate. `required` is the bound the observed value had to reach (None: not computable)."""

    metric: str
    check: str  # threshold | vs_champion | vs_base
    passed: bool
    observed: float | None
    required: float | None
    reference: float | None  # the champion's or base model's value; None for a threshold
    detail: str


@dataclass(frozen=True)
class Decision:
    approved: bool
    criteria: tuple[Criterion, ...]
    rationale: str
    first_model: bool
    evidence_hash: str  # sha256 of everything decide() saw: a record can be checked against its evidence
    gates: tuple[dict[str, Any], ...] = field(default=())

    @property
    def failed(self) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if not c.passed)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["criteria"] = [asdict(c) for c in self.criteria]
        out["failed"] = [c.metric + ":" + c.check for c in self.failed]
        return _json_safe(out)


def base_reference(candidate: Mapping[str, float]) -> dict[str, float]:
    """The base model's values under the adapter rows' names (`base_rag.f1` -> `adapter_rag.f1`), read from the
    candidate's own matrix, where both were measured on the same questions."""
    return as_adapter_rows(candidate, BASE_ROW)


def as_adapter_rows(metrics: Mapping[str, float], rows: Mapping[str, str]) -> dict[str, float]:
    """The metrics of the rows in `rows` ({adapter row: other row}) renamed to their adapter row
    (`base_rag.f1` -> `adapter_rag.f1` for BASE_ROW); metrics of other rows are left out."""
    by_row = {other: adapter for adapter, other in rows.items()}
    out = {}
    for name, value in metrics.items():
        row, _, rest = name.partition(".")
        if row in by_row:
            out[f"{by_row[row]}.{rest}"] = value
    return out


def evidence_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(_json_safe(list(parts)), sort_keys=True).encode()).hexdigest()


def decide(candidate: Mapping[str, float], champion: Mapping[str, float] | None, base: Mapping[str, float] | None,
           gates: Sequence[GateParams]) -> Decision:
    """Apply every gate; approved only when every criterion passed. `champion` None means no champion yet.

    `candidate` and `champion` are evaluation metrics (contract names); `base` holds the base model's values under
    the gated names (see `base_reference`). Paired-difference intervals are read from `candidate`.
    """
    base = base if base is not None else {}
    criteria: list[Criterion] = []
    for gate in gates:
        criteria += _gate_criteria(gate, candidate, champion, base)
    if not gates:
        criteria.append(Criterion("promotion.gates", "gates", False, None, None, None,
                                  "promotion.gates is empty: configure gates in params.yaml (fail closed)"))
    gate_dicts = tuple(g.model_dump(mode="json") for g in gates)
    approved = all(c.passed for c in criteria)
    failed = [c for c in criteria if not c.passed]
    if approved:
        rationale = f"approved by the gates: {len(criteria)} criteria of {len(gates)} gate(s) passed"
    else:
        rationale = f"refused by the gates: {len(failed)} of {len(criteria)} criteria failed: " + "; ".join(
            c.detail for c in failed)
    if champion is None:
        rationale += " (first model: compared with the base model only)"
    digest = evidence_hash(dict(candidate), None if champion is None else dict(champion), dict(base), gate_dicts)
    return Decision(approved, tuple(criteria), rationale, champion is None, digest, gate_dicts)


def _gate_criteria(gate: GateParams, candidate: Mapping[str, float], champion: Mapping[str, float] | None,
                   base: Mapping[str, float]) -> list[Criterion]:
    out: list[Criterion] = []
    observed = _value(candidate, gate.metric)
    if gate.threshold is not None:
        out.append(_compare(gate, "threshold", observed, None, gate.threshold, gate.threshold))
    row, _, metric = gate.metric.partition(".")
    if gate.min_margin_vs_champion is not None and champion is not None:
        reference = _value(champion, gate.metric)
        out.append(_margin(gate, "vs_champion", candidate, observed, reference, gate.min_margin_vs_champion,
                           CHAMPION_ROW.get(row), metric))
    if gate.min_margin_vs_base is not None:
        reference = _value(base, gate.metric)
        out.append(_margin(gate, "vs_base", candidate, observed, reference, gate.min_margin_vs_base,
                           BASE_ROW.get(row), metric))
    return out


def _margin(gate: GateParams, check: str, candidate: Mapping[str, float], observed: float | None,
            reference: float | None, margin: float, other_row: str | None, metric: str) -> Criterion:
    sign = 1.0 if gate.direction == "higher" else -1.0
    required = None if reference is None else reference + sign * margin
    point = _compare(gate, check, observed, reference, required, margin)
    if not point.passed or not gate.beyond_noise:
        return point
    # The whole interval of (candidate - reference), per question, must clear the margin in the better direction.
    row = gate.metric.partition(".")[0]
    name = f"diff.{row}_vs_{other_row}.{metric}"
    bound = _value(candidate, f"{name}.ci_low" if sign > 0 else f"{name}.ci_high")
    if bound is None:
        return Criterion(gate.metric, check, False, observed, required, reference,
                         f"{gate.metric} {check}: beyond_noise needs {name} with its interval, which was not "
                         "measured (missing or NaN)")
    ok = sign * bound >= margin
    side = "low" if sign > 0 else "high"
    detail = (f"{gate.metric} {check}: paired difference interval {side} end {bound:+.4f} "
              f"{'clears' if ok else 'does not clear'} the margin {sign * margin:+.4f} (within noise)"
              if not ok else f"{gate.metric} {check}: beyond noise ({side} end {bound:+.4f})")
    return Criterion(gate.metric, check + "_beyond_noise", ok, observed, required, reference, detail)


def _compare(gate: GateParams, check: str, observed: float | None, reference: float | None,
             required: float | None, margin: float) -> Criterion:
    side = check.removeprefix("vs_")
    what = "threshold" if check == "threshold" else f"{side} {_fmt(reference)} with margin {margin:+g}"
    if observed is None:
        return Criterion(gate.metric, check, False, None, required, reference,
                         f"{gate.metric} was not measured (missing or NaN): fails closed")
    if required is None:
        return Criterion(gate.metric, check, False, observed, None, reference,
                         f"{gate.metric}: the {check.removeprefix('vs_')} value was not measured (missing or NaN): "
                         "fails closed")
    ok = observed >= required if gate.direction == "higher" else observed <= required
    op = (">=" if ok else "<") if gate.direction == "higher" else ("<=" if ok else ">")
    return Criterion(gate.metric, check, ok, observed, required, reference,
                     f"{gate.metric} {observed:.4f} {op} {required:.4f} ({what})")


def _value(metrics: Mapping[str, float], name: str) -> float | None:
    """The metric as a finite float, or None when missing, NaN or not a number: callers fail closed on None."""
    if name not in metrics:
        return None
    try:
        value = float(metrics[name])
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _json_safe(value: Any) -> Any:
    """NaN and inf are not JSON: write them as strings so a record round-trips and hashes the same."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
