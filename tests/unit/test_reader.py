"""The reader on real files in a temporary folder: what it lists, reads, decodes and refuses."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from lorag.corpus.model import Document, Note, Rejected
from lorag.corpus.reader import (
    EncodingDetectionUnavailable,
    list_files,
    read_document,
    read_documents,
    scan,
)

SUFFIXES = (".md", ".markdown", ".txt", ".rst", ".html", ".htm")
MAX = 10_000
FRENCH = (
    "Le café était très animé ce matin-là. Les élèves, déjà réveillés, discutaient de la fête à venir: "
    "crème brûlée, pâté, et un gâteau à l'orange.\n"
)


def _write(root: Path, rel: str, data: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    _write(root, "a.md", "# A\n\ntext\n")
    _write(root, "guide/b.rst", "Title\n=====\n\nbody\n")
    _write(root, "guide/deep/c.txt", "plain\n")
    _write(root, "page.HTML", "<h1>Hi</h1><p>there</p>")
    return root


def _rules(rejected: list[Rejected]) -> dict[str, str]:
    return {r.doc_id: r.rule for r in rejected}


def test_lists_sorted_posix_paths_and_sets_non_documents_apart(docs: Path) -> None:
    # A Hugo-like folder: pages beside images, site configuration and OWNERS files.
    _write(docs, "notes.pdf", b"%PDF-1.4")
    _write(docs, "guide/diagram.png", b"\x89PNG\r\n\x1a\n")
    _write(docs, "OWNERS", "approvers: [me]\n")
    _write(docs, "_index.yaml", "menu: main\n")
    files, rejected = list_files(docs, SUFFIXES)
    assert files == ["a.md", "guide/b.rst", "guide/deep/c.txt", "page.HTML"]
    assert rejected == [], "files that are not documents are not failures"
    listing = scan(docs, SUFFIXES)
    assert listing.files == files and listing.rejected == []
    assert listing.others == ["OWNERS", "_index.yaml", "guide/diagram.png", "notes.pdf"]
    # The explicit opt-in keeps the old behaviour: each one refused as unsupported_type.
    _, refused = list_files(docs, SUFFIXES, other_files="quarantine")
    assert _rules(refused) == dict.fromkeys(listing.others, "unsupported_type")


def test_hidden_files_and_folders_are_ignored(docs: Path) -> None:
    _write(docs, ".dvc/config", "[core]\n")
    _write(docs, ".hidden.md", "# secret\n")
    _write(docs, "guide/.git/HEAD.md", "ref\n")
    files, rejected = list_files(docs, SUFFIXES)
    assert not any("." == part[0] for f in files for part in f.split("/"))
    assert rejected == []


def test_escaping_symlinks_are_rejected_not_followed(docs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _write(outside, "secret.md", "# do not index\n")
    os.symlink(outside / "secret.md", docs / "leak.md")
    os.symlink(outside, docs / "leakdir")
    files, rejected = list_files(docs, SUFFIXES)
    assert _rules(rejected) == {"leak.md": "symlink_escapes_root", "leakdir": "symlink_escapes_root"}
    assert not any(f.startswith("leak") for f in files)
    # read_document checks again instead of trusting the listing.
    result = read_document(docs, "leak.md", MAX)
    assert isinstance(result, Rejected) and result.rule == "symlink_escapes_root"
    result = read_document(docs, "leakdir/secret.md", MAX)
    assert isinstance(result, Rejected) and result.rule == "symlink_escapes_root"
    result = read_document(docs, "../outside/secret.md", MAX)
    assert isinstance(result, Rejected) and result.rule == "symlink_escapes_root"


def test_inside_symlinks_are_followed_and_loops_end(docs: Path) -> None:
    os.symlink(docs / "a.md", docs / "alias.md")
    os.symlink(docs / "guide" / "deep", docs / "shortcut")
    os.symlink(docs, docs / "guide" / "loop")  # points back at the root: would recurse forever
    files, rejected = list_files(docs, SUFFIXES)
    assert "alias.md" in files and "shortcut/c.txt" in files
    assert _rules(rejected) == {"guide/loop": "symlink_loop"}
    doc = read_document(docs, "shortcut/c.txt", MAX)
    assert isinstance(doc, Document) and doc.text == "plain\n"


def test_broken_symlink_is_reported(docs: Path) -> None:
    os.symlink(docs / "missing.md", docs / "dangling.md")
    _, rejected = list_files(docs, SUFFIXES)
    assert _rules(rejected) == {"dangling.md": "broken_symlink"}
    result = read_document(docs, "dangling.md", MAX)
    assert isinstance(result, Rejected) and result.rule == "broken_symlink"


def test_reads_utf8_with_md5_kind_and_normalised_newlines(docs: Path) -> None:
    raw = "# Titre\r\n\r\nCafé\rfin\n".encode()
    _write(docs, "win.md", raw)
    doc = read_document(docs, "win.md", MAX)
    assert isinstance(doc, Document)
    assert doc.text == "# Titre\n\nCafé\nfin\n"
    assert doc.content_md5 == hashlib.md5(raw).hexdigest()
    assert (doc.kind, doc.encoding, doc.size_bytes) == ("markdown", "utf-8", len(raw))


def test_utf8_bom_is_stripped_and_recorded(docs: Path) -> None:
    _write(docs, "bom.txt", b"\xef\xbb\xbfhello\n")
    doc = read_document(docs, "bom.txt", MAX)
    assert isinstance(doc, Document)
    assert (doc.text, doc.encoding, doc.kind) == ("hello\n", "utf-8-sig", "text")


def test_empty_file_is_read_not_rejected(docs: Path) -> None:
    _write(docs, "empty.md", b"")
    doc = read_document(docs, "empty.md", MAX)
    assert isinstance(doc, Document) and doc.text == "" and doc.size_bytes == 0


def test_binary_file_is_rejected(docs: Path) -> None:
    _write(docs, "image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    _write(docs, "controls.txt", b"\x01\x02\x03\x04\x05\x06\x07\x08" * 20 + b"some text")
    for name in ("image.md", "controls.txt"):
        result = read_document(docs, name, MAX)
        assert isinstance(result, Rejected) and result.rule == "binary", name


def test_non_utf8_is_invalid_encoding_by_default_never_silently_transcoded(docs: Path) -> None:
    # A Latin-1 page with stray bytes used to be indexed as mojibake without a word.
    _write(docs, "fr.txt", FRENCH.encode("latin-1") + b"\xff\xfe stray\n")
    result = read_document(docs, "fr.txt", MAX)
    assert isinstance(result, Rejected) and result.rule == "invalid_encoding"
    assert "corpus.detect_encoding" in result.detail and "UTF-8" in result.detail


def test_utf16_with_a_bom_is_read_without_a_guess(docs: Path) -> None:
    text = "# Titre\n\nCafé crème.\n"
    _write(docs, "le.md", b"\xff\xfe" + text.encode("utf-16-le"))
    _write(docs, "be.md", b"\xfe\xff" + text.encode("utf-16-be"))
    for name, encoding in (("le.md", "utf-16-le"), ("be.md", "utf-16-be")):
        doc = read_document(docs, name, MAX)
        assert isinstance(doc, Document) and doc.text == text and doc.encoding == encoding and doc.notes == ()


def test_latin1_file_is_detected_when_asked_and_reported(docs: Path) -> None:
    _write(docs, "fr.txt", FRENCH.encode("latin-1"))
    doc = read_document(docs, "fr.txt", MAX, detect_encoding=True)
    assert isinstance(doc, Document)
    assert doc.text == FRENCH  # every accent decoded right, not a near-miss code page
    assert doc.encoding == "cp1252"
    assert [n.rule for n in doc.notes] == ["transcoded"] and "cp1252" in doc.notes[0].detail
    utf8 = read_document(docs, "a.md", MAX, detect_encoding=True)
    assert isinstance(utf8, Document) and utf8.notes == ()  # only guesses are reported


def test_cyrillic_cp1251_is_not_forced_into_cp1252(docs: Path) -> None:
    text = "Съешь же ещё этих мягких французских булок, да выпей чаю. Москва — столица России.\n"
    _write(docs, "ru.txt", text.encode("cp1251"))
    doc = read_document(docs, "ru.txt", MAX, detect_encoding=True)
    assert isinstance(doc, Document) and doc.text == text and doc.encoding == "cp1251"


def test_invalid_bytes_with_no_confident_encoding_are_invalid_encoding(docs: Path) -> None:
    noise = bytes((i * 97 + 13) % 128 + 128 for i in range(600))  # high bytes only, no NUL, no language
    _write(docs, "noise.md", b"# Title\n\n" + noise)
    result = read_document(docs, "noise.md", MAX, detect_encoding=True)
    assert isinstance(result, Rejected) and result.rule == "invalid_encoding"
    assert "no encoding detected" in result.detail


def test_detection_without_charset_normalizer_is_a_clear_error(docs: Path, monkeypatch) -> None:
    # None in sys.modules is Python's own "this module cannot be imported" (as if it were not installed).
    monkeypatch.setitem(__import__("sys").modules, "charset_normalizer", None)
    with pytest.raises(EncodingDetectionUnavailable, match="pip install charset-normalizer"):
        read_documents(docs, ["a.md"], MAX, detect_encoding=True)
    assert isinstance(read_document(docs, "a.md", MAX), Document)  # the default policy needs no detector


def test_file_over_max_bytes_is_too_large(docs: Path) -> None:
    _write(docs, "big.txt", b"x" * 2048)
    result = read_document(docs, "big.txt", 1024)
    assert isinstance(result, Rejected) and result.rule == "too_large" and result.size_bytes == 2048
    assert isinstance(read_document(docs, "big.txt", 2048), Document)  # the limit itself is allowed


def test_unsupported_suffix_is_rejected_by_read(docs: Path) -> None:
    _write(docs, "data.csv", "a,b\n")
    result = read_document(docs, "data.csv", MAX)
    assert isinstance(result, Rejected) and result.rule == "unsupported_type"


def test_markdown_front_matter_and_shortcodes_are_not_text(docs: Path) -> None:
    _write(docs, "hugo.md", '---\ntitle: "Install"\nweight: 20\n---\n{{< note >}}Read me.{{< /note >}}\n')
    doc = read_document(docs, "hugo.md", MAX)
    assert isinstance(doc, Document)
    assert (doc.text, doc.title, doc.metadata, doc.notes) == ("Read me.\n", "Install", {"weight": 20}, ())
    _write(docs, "broken.md", "---\ntitle: [oops\n---\nBody text.\n")
    doc = read_document(docs, "broken.md", MAX)
    assert isinstance(doc, Document) and doc.text == "Body text.\n" and doc.title is None
    assert [n.rule for n in doc.notes] == ["front_matter_invalid"]
    assert isinstance(doc.notes[0], Note)


def test_fifo_is_rejected_without_blocking(docs: Path) -> None:
    os.mkfifo(docs / "pipe.md")
    result = read_document(docs, "pipe.md", MAX)
    assert isinstance(result, Rejected) and result.rule == "unsupported_type"


def test_html_becomes_text_with_markdown_headings(docs: Path) -> None:
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<h1>Guide</h1><p>Intro  text\n spread.</p><script>alert('x')</script>"
        "<h2>Install</h2><p>Run <b>pip</b>.</p><pre># not a heading\nx = 1</pre>"
        "<ul><li>one</li><li>two</li></ul><p># hash at start</p></body></html>"
    )
    _write(docs, "guide.html", html)
    doc = read_document(docs, "guide.html", MAX)
    assert isinstance(doc, Document) and doc.kind == "html"
    assert doc.text == (
        "# Guide\n\nIntro text spread.\n\n## Install\n\nRun pip.\n\n```\n# not a heading\nx = 1\n```"
        "\n\n- one\n\n- two\n\n\\# hash at start"
    )


def test_read_documents_splits_documents_from_rejections(docs: Path) -> None:
    _write(docs, "big.txt", b"x" * 100)
    files, _ = list_files(docs, SUFFIXES)
    read, rejected = read_documents(docs, files, 50)
    assert [d.doc_id for d in read] == ["a.md", "guide/b.rst", "guide/deep/c.txt", "page.HTML"]
    assert _rules(rejected) == {"big.txt": "too_large"}
