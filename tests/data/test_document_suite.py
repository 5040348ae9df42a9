"""The documents suite (real Great Expectations): good corpora pass, each bad file is named with its rule."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lorag.config import ValidationParams
from lorag.corpus.model import Document, Note, Rejected
from lorag.corpus.reader import list_files, read_documents
from lorag.validation.documents import (
    DocFailure,
    ValidationFailed,
    ValidationReport,
    require_ok,
    validate_documents,
)
from lorag.validation.quarantine import quarantine, quarantined_before

PARAMS = ValidationParams(min_chars=20, max_chars=200, max_failure_ratio=0.2)
SUFFIXES = (".md", ".txt", ".html")


def doc(doc_id: str, text: str, kind: str = "markdown") -> Document:
    raw = text.encode("utf-8")
    return Document(doc_id, text, kind, hashlib.md5(raw).hexdigest(), len(raw))  # type: ignore[arg-type]


def good_docs() -> list[Document]:
    return [doc(f"guide/page{i}.md", f"# Page {i}\n\nThis page explains step {i} in detail.") for i in range(5)]


def rules(report: ValidationReport) -> set[tuple[str, str]]:
    return {(f.doc_id, f.rule) for f in report.failures}


def test_good_documents_pass() -> None:
    report = validate_documents(good_docs(), [], PARAMS, ["markdown"])

    assert report.failures == []
    assert report.ok and report.failure_ratio == 0.0 and report.total == 5
    assert sorted(report.passed) == [d.doc_id for d in good_docs()]


def test_each_bad_kind_is_named_with_its_rule() -> None:
    body = "Enough words here to pass the minimum."
    documents = [
        *good_docs(),
        doc("empty.md", ""),
        doc("blank.md", "   \n\t  "),
        doc("short.md", "tiny"),
        doc("long.md", "x" * 201),
        doc("page.html", body + " html", kind="html"),
        doc("z-copy.md", body),  # same bytes as a-orig.md; sorted first wins whatever the input order
        doc("a-orig.md", body),
        doc("twice.md", body + " once"),
    ]
    rejected = [
        Rejected("blob.md", "binary", "contains NUL bytes", 12),
        Rejected("huge.md", "too_large", "5000000 bytes > max 2000000", 5_000_000),
        Rejected("escape.md", "symlink_escapes_root", "symlink points outside the docs root, to /etc/passwd"),
        Rejected("latin.txt", "invalid_encoding", "not UTF-8"),
        Rejected("twice.md", "unreadable", "vanished"),  # the same path twice: the doc_id is not unique
    ]

    report = validate_documents(list(reversed(documents)), rejected, PARAMS, ["markdown", "text"])

    assert rules(report) == {
        ("empty.md", "empty_text"), ("empty.md", "too_short"),
        ("blank.md", "empty_text"), ("blank.md", "too_short"),
        ("short.md", "too_short"),
        ("long.md", "too_long"),
        ("page.html", "kind_not_allowed"),
        ("z-copy.md", "duplicate_content"),
        ("blob.md", "binary"), ("huge.md", "too_large"),
        ("escape.md", "symlink_escapes_root"), ("latin.txt", "invalid_encoding"),
        ("twice.md", "duplicate_doc_id"), ("twice.md", "unreadable"),
    }
    details = {(f.doc_id, f.rule): f.detail for f in report.failures}
    assert details[("z-copy.md", "duplicate_content")].startswith("same bytes as a-orig.md")
    assert details[("long.md", "too_long")] == "201 characters > validation.max_chars 200"
    assert details[("blob.md", "binary")] == "contains NUL bytes"
    assert "a-orig.md" in report.passed and "empty.md" not in report.passed
    assert report.total == 17  # distinct paths: 13 documents + 4 more rejected
    assert report.failure_ratio == pytest.approx(11 / 17)


def test_empty_files_are_not_duplicates_of_each_other() -> None:
    report = validate_documents([doc("a.md", ""), doc("b.md", "")], [], ValidationParams(min_chars=0), ["markdown"])

    assert rules(report) == {("a.md", "empty_text"), ("b.md", "empty_text")}


def test_ratio_and_require_ok() -> None:
    documents = [*good_docs(), doc("short.md", "tiny")]  # 1 bad of 6
    lenient = validate_documents(documents, [], PARAMS, ["markdown"])
    assert lenient.failure_ratio == pytest.approx(1 / 6)
    assert require_ok(lenient) is lenient

    strict = validate_documents(documents, [], ValidationParams(min_chars=20, max_failure_ratio=0.1), ["markdown"])
    assert not strict.ok
    with pytest.raises(ValidationFailed) as err:
        require_ok(strict)
    message = str(err.value)
    assert "short.md (too_short)" in message and "16.7% > validation.max_failure_ratio 10.0%" in message
    assert "raise validation.max_failure_ratio" in message


def test_summary_and_json() -> None:
    report = validate_documents([*good_docs(), doc("short.md", "tiny")], [Rejected("b.md", "binary", "NUL")],
                                PARAMS, ["markdown"])

    summary = report.summary()
    assert summary["docs_total"] == 7 and summary["docs_failed"] == 2 and summary["docs_passed"] == 5
    assert summary["failed_too_short"] == 1 and summary["failed_binary"] == 1
    assert all(isinstance(v, (int, float)) for v in summary.values())
    data = json.loads(report.to_json())
    assert data["ok"] is False and {"doc_id": "b.md", "rule": "binary", "detail": "NUL"} in data["failures"]


def test_no_documents_is_an_empty_passing_report() -> None:
    report = validate_documents([], [], PARAMS, ["markdown"])

    assert report.total == 0 and report.ok and report.failures == []


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_quarantine_copies_safe_failures_once_per_content_and_keeps_originals(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "good.md").write_text("# Good\n\nA perfectly fine page of text.\n", encoding="utf-8")
    (docs / "sub" / "empty.md").write_text("\n", encoding="utf-8")
    (docs / "big.md").write_text("# Big\n\n" + "word " * 100, encoding="utf-8")
    (docs / "blob.md").write_bytes(b"\x00\x01binary")
    secret = tmp_path / "outside.md"
    secret.write_text("SECRET outside the docs folder, never to be copied\n", encoding="utf-8")
    (docs / "escape.md").symlink_to(secret)
    ids, rejected = list_files(docs, SUFFIXES)
    documents, unreadable = read_documents(docs, ids, max_bytes=300)
    report = validate_documents(documents, rejected + unreadable, PARAMS, ["markdown"])

    out = quarantine(report, docs, tmp_path / "quarantine", label="rev-1", max_bytes=300)

    assert rules(report) >= {("sub/empty.md", "empty_text"), ("big.md", "too_large"), ("blob.md", "binary"),
                             ("escape.md", "symlink_escapes_root")}
    assert out == tmp_path / "quarantine"
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert saved["label"] == "rev-1"
    assert DocFailure("sub/empty.md", "empty_text", "text is empty or whitespace only").__dict__ in saved["failures"]
    assert sorted(saved["copied"]) == ["blob.md", "sub/empty.md"]
    assert set(saved["not_copied"]) == {"big.md", "escape.md"}
    files = saved["files"]
    assert files["sub/empty.md"]["rules"] == ["empty_text", "too_short"]  # one entry per file, every rule
    blob_md5, empty_md5 = _md5(b"\x00\x01binary"), _md5(b"\n")
    assert files["blob.md"]["copy"] == f"files/{blob_md5}.md"
    assert (out / files["blob.md"]["copy"]).read_bytes() == b"\x00\x01binary"
    assert (out / files["sub/empty.md"]["copy"]).read_bytes() == b"\n"
    assert files["big.md"]["md5"] == _md5((docs / "big.md").read_bytes()) and files["big.md"]["copy"] is None
    assert files["escape.md"]["md5"] is None and files["escape.md"]["copy"] is None
    assert not any(b"SECRET" in p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert quarantined_before(out) == {d: e["md5"] for d, e in files.items()}
    # Originals are never moved or deleted.
    assert {p.name for p in docs.rglob("*")} == {"sub", "good.md", "empty.md", "big.md", "blob.md", "escape.md"}
    assert (docs / "escape.md").is_symlink()

    # The next run with the same bad files writes no copy again; a fixed file's copy goes.
    before = {p.name: p.stat().st_mtime_ns for p in (out / "files").iterdir()}
    quarantine(report, docs, out, label="rev-2", max_bytes=300)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "files").iterdir()} == before
    (docs / "blob.md").write_text("# Blob\n\nNow a real page of text.\n", encoding="utf-8")
    documents, unreadable = read_documents(docs, ids, max_bytes=300)
    fixed = validate_documents(documents, rejected + unreadable, PARAMS, ["markdown"])
    quarantine(fixed, docs, out, max_bytes=300)
    assert sorted(p.name for p in (out / "files").iterdir()) == [f"{empty_md5}.md"]


def test_a_missing_or_foreign_quarantine_report_reads_as_nothing_quarantined(tmp_path: Path) -> None:
    assert quarantined_before(tmp_path / "nowhere") == {}
    (tmp_path / "report.json").write_text('{"failures": []}', encoding="utf-8")  # an older lorag's report
    assert quarantined_before(tmp_path) == {}
    (tmp_path / "report.json").write_text("{not json", encoding="utf-8")
    assert quarantined_before(tmp_path) == {}


def test_notes_are_reported_without_failing() -> None:
    page = Document("legacy.md", "Une page écrite en Latin-1, lue quand même.", "markdown", "0" * 32, 44,
                    encoding="cp1252", notes=(Note("transcoded", "decoded as cp1252"),))
    report = validate_documents([*good_docs(), page], [], PARAMS, ["markdown"])

    assert report.ok and report.failures == [] and "legacy.md" in report.passed
    assert [(n.doc_id, n.rule) for n in report.notes] == [("legacy.md", "transcoded")]
    assert report.summary()["noted_transcoded"] == 1
    assert json.loads(report.to_json())["notes"][0]["detail"] == "decoded as cp1252"
