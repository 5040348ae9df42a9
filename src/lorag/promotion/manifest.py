"""The release manifest: one JSON per champion tying together everything the release is made of.

Model version -> adapter file hash -> base model id and revision -> examples data revision and its validation
-> docs data revision -> index collection, table version, embedder -> training and evaluation runs -> the gate
decision -> the approver, reason and time. Promotion is refused when a link is missing: a release nobody can
trace back is not a release.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

# Every link a release must have (a value of None, "", or "none" is missing).
REQUIRED = ("model_name", "model_version", "released_model", "released_version", "adapter_sha256", "base_model",
            "base_model_revision", "examples_data_rev", "examples_validation", "docs_data_rev", "index_collection",
            "index_chunks", "embedder", "train_run_id", "eval_run_id", "gate_decision", "approver", "reason",
            "approved_at")


class MissingLink(ValueError):
    """A release manifest lacks a link; `missing` names each one."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"release refused: the manifest lacks {', '.join(missing)}. Each link must be recorded "
                         "before a version can be released (train and evaluate it through lorag, publish the index "
                         "with `lorag reindex`)")
        self.missing = missing


def missing_links(manifest: dict[str, Any]) -> list[str]:
    return [k for k in REQUIRED if manifest.get(k) in (None, "", "none", {}, [])]


def check_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    missing = missing_links(manifest)
    if missing:
        raise MissingLink(missing)
    return manifest


def manifest_hash(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode()).hexdigest()


def folder_sha256(folder: Path) -> str:
    """One hash over every file of a folder (relative path + content), independent of file order on disk."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    if not files:
        return ""
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def base_revision(tags: dict[str, str]) -> str | None:
    """The base model's revision: the hub revision, or for a local folder the fingerprint training recorded."""
    for key in ("lorag.base_model_revision", "lorag.base_model_fingerprint"):
        value = tags.get(key)
        if value not in (None, "", "none"):
            return value
    return None


def summary_lines(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """The manifest as (label, value) rows for `lorag status` / `lorag review`."""
    keys = ("model_version", "released_version", "approver", "reason", "approved_at", "adapter_sha256",
            "base_model", "examples_data_rev", "docs_data_rev", "index_collection", "index_table_version",
            "train_run_id", "eval_run_id")
    return [(k, str(manifest.get(k))) for k in keys if k in manifest]
