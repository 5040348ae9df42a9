"""What the drift signals need to know about the champion: its lineage and evaluation (read by
lorag.tracking.monitor from MLflow, consumed by lorag.drift.signals; kept here so neither imports the other)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChampionFacts:
    version: str
    docs_rev: str | None  # docs data revision of the index the champion was registered with
    examples_rev: str | None
    examples: int | None  # examples its training run read
    evaluation: dict[str, float] = field(default_factory=dict)
    evaluation_error: str | None = None  # why `evaluation` is empty
    index_collection: str | None = None  # the frozen index of its release (None: released before freezing, or never)
