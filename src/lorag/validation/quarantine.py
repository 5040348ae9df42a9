"""The quarantine of documents that failed validation: one copy per content and a report of the latest run.

`<quarantine_dir>/files/<md5><suffix>` holds one copy of each failing content, written once: a file that stays
bad is not copied again on every run (a real docs folder used to add megabytes per run). `report.json` describes
the latest run, file by file (rules, md5, where its copy is or why there is none); it is also the record that
tells the next run which failing files are still quarantined rather than new. The originals are never touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from lorag.config import CorpusParams
from lorag.versioning.dvc_repo import md5_file  # the md5 the manifest records: copies are keyed alike
from lorag.validation.documents import ValidationReport

REPORT_NAME = "report.json"
_COPIES = "files"
_DEFAULT_MAX_BYTES: int = CorpusParams.model_fields["max_file_bytes"].default


def quarantine(
    report: ValidationReport,
    docs_root: Path,
    quarantine_dir: Path,
    *,
    label: str = "",
    max_bytes: int = _DEFAULT_MAX_BYTES,
) -> Path:
    """Copy each failing file that is safe to copy to `<quarantine_dir>/files/<md5><suffix>`, once per content,
    and write `<quarantine_dir>/report.json` for this run; returns `quarantine_dir`.

    A copy that already exists is not written again, and copies no file in the report refers to any more (fixed
    or deleted files) are removed, so the folder holds what is quarantined now and grows with distinct bad
    contents, not with runs. Originals stay where they are. Never copied: paths that leave `docs_root`
    (including through a symlink), missing or non-regular files, and files over `max_bytes`; the report says
    which and why. `label` (e.g. the data revision) is recorded in the report.
    """
    out = Path(quarantine_dir)
    (out / _COPIES).mkdir(parents=True, exist_ok=True)
    root = Path(docs_root).resolve()
    too_large = {f.doc_id for f in report.failures if f.rule == "too_large"}
    files: dict[str, dict[str, Any]] = {}
    for doc_id, failures in report.rules_by_file().items():
        entry: dict[str, Any] = {"rules": [f.rule for f in failures], "md5": None, "copy": None, "not_copied": None}
        source, reason = _safe_source(root, doc_id)
        if source is not None:
            entry["md5"] = md5_file(source)
            if doc_id in too_large or source.stat().st_size > max_bytes:
                reason = f"larger than {max_bytes} bytes"
            else:
                entry["copy"] = _store_copy(source, out / _COPIES, entry["md5"], doc_id)
        entry["not_copied"] = reason or None
        files[doc_id] = entry
    _prune_copies(out / _COPIES, {e["copy"] for e in files.values() if e["copy"]})
    payload = {
        **report.to_dict(),
        "label": label,
        "files": files,
        "copied": sorted(d for d, e in files.items() if e["copy"]),
        "not_copied": {d: e["not_copied"] for d, e in files.items() if e["not_copied"]},
    }
    _write_atomic(out / REPORT_NAME, json.dumps(payload, indent=2, ensure_ascii=False))
    return out


def quarantined_before(quarantine_dir: Path) -> dict[str, str | None]:
    """doc_id -> md5 (None when it could not be read) of the files the last quarantine report holds.

    A missing or unreadable report (first run, a report from an older lorag, a hand edit) reads as empty: it
    only decides whether a failing file is reported as "still quarantined" or as newly quarantined.
    """
    try:
        payload = json.loads((Path(quarantine_dir) / REPORT_NAME).read_text(encoding="utf-8"))
        return {str(doc_id): entry.get("md5") for doc_id, entry in payload["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _safe_source(root: Path, doc_id: str) -> tuple[Path | None, str]:
    rel = PurePosixPath(doc_id)
    if rel.is_absolute() or ".." in rel.parts or doc_id in {"", "."}:
        return None, "path is not inside the docs folder"
    real = (root / rel).resolve(strict=False)
    if root not in real.parents:
        return None, "resolves outside the docs folder (symlink); never copied"
    if not real.is_file():
        return None, "missing or not a regular file"
    return real, ""


def _store_copy(source: Path, folder: Path, md5: str, doc_id: str) -> str:
    """Copy `source` to `<folder>/<md5><suffix>` unless that content is already there; the name relative to the
    quarantine folder. The suffix (letters and digits only) keeps the copy openable by type."""
    suffix = PurePosixPath(doc_id).suffix.lower()
    suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix) else ""
    target = folder / f"{md5}{suffix}"
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".partial-")
        os.close(fd)
        shutil.copyfile(source, tmp)  # the resolved real file: no link is followed past the checks
        os.replace(tmp, target)  # atomic: a crash never leaves a half copy under a content name
    return f"{_COPIES}/{target.name}"


def _prune_copies(folder: Path, keep: set[str]) -> None:
    for path in folder.iterdir():
        if path.is_file() and f"{_COPIES}/{path.name}" not in keep:
            path.unlink()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
