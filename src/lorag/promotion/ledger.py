"""The audit ledger's events, and the questions asked of them (no I/O: lorag.tracking.audit stores them).

MLflow keeps no history of aliases (mlflow#2169), so every move is also an event here: gate decisions,
approvals, refusals, rejections, timeouts, alias moves and rollbacks, each with who, when, why, from/to and the
hash of the evidence the decision saw. Events are only ever appended.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

KINDS = ("gate_decision", "approval", "override", "refused", "rejection", "timeout", "alias_move", "rollback",
         "index_restore")


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class AuditEvent:
    kind: str
    model: str
    version: str | None  # the version the event is about
    actor: str  # who: an approver's name, or "lorag" for automatic steps (gates, the flow's timeout)
    reason: str = ""
    alias: str | None = None
    from_version: str | None = None  # alias moves: where the alias pointed before (None: nowhere)
    to_version: str | None = None
    evidence_hash: str | None = None
    at: str = field(default_factory=now_iso)  # ISO-8601 UTC with microseconds: sorts as text
    seq: int = field(default_factory=time.time_ns)  # tie-break for events in the same microsecond
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"audit event kind {self.kind!r}: use one of {', '.join(KINDS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AuditEvent:
        return cls(**raw)

    def line(self) -> str:
        moved = f" {self.alias}: {self.from_version or '-'} -> {self.to_version or '-'}" if self.alias else ""
        version = f" v{self.version}" if self.version else ""
        why = f"  ({self.reason})" if self.reason else ""
        return f"{self.at[:19]}Z  {self.kind:<13} {self.actor:<10}{version}{moved}{why}"


def parse_time(text: str) -> datetime:
    """ISO-8601 (`2026-12-02T21:00:00Z`, a date, or with an offset) -> aware UTC datetime."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"time {text!r}: use ISO-8601, e.g. 2026-12-02T21:00:00Z") from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def alias_at(events: Sequence[AuditEvent], alias: str, when: datetime) -> str | None:
    """Which version `alias` pointed at, at time `when` (None: not set then), from the recorded alias moves."""
    current = None
    for event in sorted(events, key=lambda e: (e.at, e.seq)):
        if parse_time(event.at) > when:
            break
        if event.kind == "alias_move" and event.alias == alias:
            current = event.to_version
    return current


def release_chain(events: Sequence[AuditEvent], alias: str = "champion") -> list[str]:
    """The versions `alias` pointed at, oldest first, as moves happened (repeats kept)."""
    moves = [e for e in sorted(events, key=lambda e: (e.at, e.seq)) if e.kind == "alias_move" and e.alias == alias]
    return [e.to_version for e in moves if e.to_version]


def details_json(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, default=str)
