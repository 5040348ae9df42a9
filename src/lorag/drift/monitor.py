"""One monitoring check: compute the signals, route with the recorded history, record the decision.

The Prefect monitor flow and `lorag drift` both call `check`; only the flow acts on the decision (it emits the
event the deployments trigger on). `lorag drift` shows the decision without recording it, so looking does not
move the N-of-M window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.drift.route import Decision
    from lorag.drift.signals import Signal


@dataclass(frozen=True)
class CheckResult:
    signals: dict[str, Signal]
    decision: Decision
    run_id: str | None  # the MLflow run that records it (None when not recorded)


def check(params: Params, record: bool = True) -> CheckResult:
    """Compute all signals, route them against the last checks, and (with `record`) log the decision to MLflow."""
    from lorag.drift.route import route
    from lorag.drift.signals import compute_signals
    from lorag.tracking.monitor import champion_facts, history, record_decision

    signals = compute_signals(params, champion_facts(params))
    decision = route(signals, history(params, params.monitoring.window - 1), params.monitoring)
    run_id = record_decision(params, signals, decision) if record else None
    return CheckResult(signals, decision, run_id)
