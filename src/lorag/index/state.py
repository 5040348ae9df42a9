"""The record a published index keeps about itself, stored in the index store beside the data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STATE_VERSION = 1


@dataclass
class IndexState:
    """What the published alias reflects. Saved last, so it only ever describes finished work.

    `manifest` maps each indexed document to the md5 it was indexed at. A document that was modified into an
    invalid state keeps its old md5 here (its last good version stays published) so the next run looks at it
    again; a new document that failed validation is absent for the same reason.
    """

    collection: str
    data_rev: str
    git_rev: str | None
    embedder: str  # embedder fingerprint: vectors of two embedders never share a collection
    chunking: str  # fingerprint of the chunking params: a change means a full rebuild
    manifest: dict[str, str] = field(default_factory=dict)
    chunk_count: int = 0
    history: list[str] = field(default_factory=list)  # collections built by --full, oldest first
    pending: list[str] | None = None  # documents an unfinished run was writing (write-ahead journal)
    updated_at: str = ""
    run_key: str = ""  # the re-index run that published this state (its MLflow run carries the same key)
    version: int = STATE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> IndexState:
        if raw.get("version") != STATE_VERSION:
            raise ValueError(
                f"index state version {raw.get('version')!r} is not {STATE_VERSION}: rebuild with `lorag reindex --full`"
            )
        return cls(**raw)
