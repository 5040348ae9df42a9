"""What one re-index did: the plan it carried out, what it embedded, verified and recorded, in how long."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lorag.reindex.prepare import Prepared


@dataclass
class ReindexResult:
    prepared: Prepared
    dry_run: bool
    embeddings_computed: int = 0
    embeddings_reused: int = 0
    verified: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    quarantine_dir: str | None = None
    run_id: str | None = None

    def summary(self) -> dict[str, Any]:
        out = self.prepared.summary()
        out["embeddings"] = {"computed": self.embeddings_computed, "reused": self.embeddings_reused}
        out.update(dry_run=self.dry_run, verified=self.verified, seconds=self.seconds)
        out["quarantine_dir"] = self.quarantine_dir
        out["mlflow_run_id"] = self.run_id
        return out
