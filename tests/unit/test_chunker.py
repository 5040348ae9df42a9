"""The chunker with the real all-MiniLM-L6-v2 tokenizer: heading paths, token bound, offsets, stable ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lorag.corpus.chunker import chunk_document, count_tokens
from lorag.corpus.model import Chunk, Document, DocKind, chunk_uuid, text_hash
from lorag.corpus.reader import read_document
from lorag.corpus.sections import split_sections

SENTENCE = "The retrieval index follows the documents, one content hash at a time. "


def _doc(text: str, kind: DocKind = "markdown", doc_id: str = "guide.md") -> Document:
    return Document(doc_id=doc_id, text=text, kind=kind, content_md5="0" * 32, size_bytes=len(text))


def _assert_invariants(doc: Document, chunks: list[Chunk], tokenizer: Any, max_tokens: int) -> None:
    for ordinal, chunk in enumerate(chunks):
        assert chunk.text == doc.text[chunk.start : chunk.end]
        assert chunk.text and chunk.text == chunk.text.strip()
        assert count_tokens(tokenizer, chunk.text) <= max_tokens
        assert chunk.ordinal == ordinal and chunk.doc_id == doc.doc_id
        assert chunk.text_hash == text_hash(chunk.text)


MARKDOWN = """Preamble before any heading.

# Guide

Intro to the guide.

## Install

Run the installer.

```bash
# this comment is code, not a heading
pip install lorag
```

### Linux

Use the package manager.

## Usage ##

Call the command.

# Appendix

The end.
"""


def test_markdown_heading_paths(minilm_tokenizer: Any) -> None:
    doc = _doc(MARKDOWN)
    chunks = chunk_document(doc, minilm_tokenizer, max_tokens=64)
    _assert_invariants(doc, chunks, minilm_tokenizer, 64)
    paths = [(c.heading_path, c.text.splitlines()[0]) for c in chunks]
    assert paths == [
        ((), "Preamble before any heading."),
        (("Guide",), "Intro to the guide."),
        (("Guide", "Install"), "Run the installer."),
        (("Guide", "Install", "Linux"), "Use the package manager."),
        (("Guide", "Usage"), "Call the command."),
        (("Appendix",), "The end."),
    ]
    assert "# this comment is code" in chunks[2].text  # fenced code stays in its section's text
    assert chunks[3].heading == "Guide > Install > Linux"


RST = """=========
 Manual
=========

Overview text.

Setup
=====

Setup text.

Linux
-----

Linux text.

Details
~~~~~~~

Deep text.

Usage
=====

Usage text.
"""


def test_rst_levels_follow_first_appearance(minilm_tokenizer: Any) -> None:
    doc = _doc(RST, kind="rst", doc_id="manual.rst")
    chunks = chunk_document(doc, minilm_tokenizer, max_tokens=64)
    _assert_invariants(doc, chunks, minilm_tokenizer, 64)
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Manual",), "Overview text."),
        (("Manual", "Setup"), "Setup text."),
        (("Manual", "Setup", "Linux"), "Linux text."),
        (("Manual", "Setup", "Linux", "Details"), "Deep text."),
        (("Manual", "Usage"), "Usage text."),
    ]


def test_rst_underline_style_order_is_per_document() -> None:
    # Here '-' appears first, so '-' is level 1 and '=' level 2: the reverse of the document above.
    text = "Top\n---\n\na\n\nSub\n===\n\nb\n\nNext\n----\n\nc\n"
    sections = split_sections(text, "rst")
    assert [s.heading_path for s in sections] == [("Top",), ("Top", "Sub"), ("Next",)]


def test_rst_lines_that_are_not_titles() -> None:
    # An adornment line under the second line of a paragraph, and a transition, are not titles.
    text = "Para line one\nline two\n---------\n\ntext\n\n----------\n\nmore\n"
    assert [s.heading_path for s in split_sections(text, "rst")] == [()]


def test_html_headings_via_reader(tmp_path: Path, minilm_tokenizer: Any) -> None:
    (tmp_path / "page.html").write_text(
        "<h1>Manual</h1><p>Hello.</p><h3>Deep</h3><p>Deep text.</p><h2>Side</h2><p>Side text.</p>"
    )
    doc = read_document(tmp_path, "page.html", 10_000)
    assert isinstance(doc, Document)
    chunks = chunk_document(doc, minilm_tokenizer, max_tokens=64)
    _assert_invariants(doc, chunks, minilm_tokenizer, 64)
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Manual",), "Hello."),
        (("Manual", "Deep"), "Deep text."),
        (("Manual", "Side"), "Side text."),
    ]


def test_plain_text_has_no_headings_and_packs_paragraphs(minilm_tokenizer: Any) -> None:
    text = "# not a heading in plain text\n\n" + "\n\n".join((SENTENCE * 3).strip() for _ in range(12))
    doc = _doc(text, kind="text", doc_id="notes.txt")
    chunks = chunk_document(doc, minilm_tokenizer, max_tokens=100)
    _assert_invariants(doc, chunks, minilm_tokenizer, 100)
    assert {c.heading_path for c in chunks} == {()}
    assert chunks[0].text.startswith("# not a heading")
    assert 1 < len(chunks) < 12  # paragraphs were packed together, not one chunk each
    # Cuts fall between paragraphs: every chunk ends at the end of a paragraph.
    assert all(doc.text[c.end : c.end + 2] in ("\n\n", "") for c in chunks)


def test_long_paragraph_is_cut_at_sentences(minilm_tokenizer: Any) -> None:
    text = "# Long\n\n" + SENTENCE * 40
    doc = _doc(text)
    chunks = chunk_document(doc, minilm_tokenizer, max_tokens=50)
    _assert_invariants(doc, chunks, minilm_tokenizer, 50)
    assert len(chunks) > 1
    assert all(c.text.endswith("at a time.") for c in chunks)


def test_huge_paragraph_without_punctuation_is_cut_by_tokens(minilm_tokenizer: Any) -> None:
    words = [f"word{i} unbelievably" for i in range(1500)]
    text = "# Wall\n\n" + " ".join(words)
    doc = _doc(text)
    chunks = chunk_document(doc, minilm_tokenizer, max_tokens=120)
    _assert_invariants(doc, chunks, minilm_tokenizer, 120)
    assert len(chunks) >= count_tokens(minilm_tokenizer, " ".join(words)) // 120
    # Together the chunks cover the whole paragraph, in order, losing only the whitespace between them.
    assert "".join(c.text for c in chunks).replace(" ", "") == "".join(words).replace(" ", "")
    assert all(c.heading_path == ("Wall",) for c in chunks)


def test_overlap_repeats_tail_sentences(minilm_tokenizer: Any) -> None:
    text = "# Over\n\n" + " ".join(f"Sentence number {i} is here." for i in range(60))
    doc = _doc(text)
    chunks = chunk_document(doc, minilm_tokenizer, max_tokens=60, overlap_tokens=20)
    _assert_invariants(doc, chunks, minilm_tokenizer, 60)
    assert len(chunks) > 2
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start < before.end  # the next chunk starts inside the previous one
        assert count_tokens(minilm_tokenizer, doc.text[after.start : before.end]) <= 20


def test_overlap_between_token_windows(minilm_tokenizer: Any) -> None:
    doc = _doc("# W\n\n" + " ".join(f"tok{i}" for i in range(400)))
    chunks = chunk_document(doc, minilm_tokenizer, max_tokens=50, overlap_tokens=10)
    _assert_invariants(doc, chunks, minilm_tokenizer, 50)
    assert all(after.start < before.end for before, after in zip(chunks, chunks[1:], strict=False))


def test_ids_are_deterministic_and_repeat_text_gets_occurrences(minilm_tokenizer: Any) -> None:
    text = "# A\n\nSame text.\n\n# B\n\nSame text.\n\n# C\n\nOther text.\n"
    first = chunk_document(_doc(text), minilm_tokenizer, max_tokens=32)
    second = chunk_document(_doc(text), minilm_tokenizer, max_tokens=32)
    assert first == second and [c.chunk_id for c in first] == [c.chunk_id for c in second]
    same = text_hash("Same text.")
    assert [c.chunk_id for c in first[:2]] == [chunk_uuid("guide.md", same, 0), chunk_uuid("guide.md", same, 1)]
    assert len({c.chunk_id for c in first}) == 3
    other_doc = chunk_document(_doc(text, doc_id="other.md"), minilm_tokenizer, max_tokens=32)
    assert {c.chunk_id for c in other_doc}.isdisjoint({c.chunk_id for c in first})


def test_editing_one_section_keeps_other_sections_chunks(minilm_tokenizer: Any) -> None:
    sections = [
        f"# Part {i}\n\n" + "\n\n".join(f"Part {i} paragraph {j}. " + SENTENCE * 4 for j in range(6))
        for i in range(4)
    ]
    before = _doc("\n\n".join(sections))
    sections[1] = sections[1].replace("paragraph 2.", "paragraph two, now rewritten at length. " + SENTENCE * 3)
    after = _doc("\n\n".join(sections))
    old = chunk_document(before, minilm_tokenizer, max_tokens=80)
    new = chunk_document(after, minilm_tokenizer, max_tokens=80)
    _assert_invariants(after, new, minilm_tokenizer, 80)

    def untouched(chunks: list[Chunk]) -> list[tuple[str, str, tuple[str, ...]]]:
        return [(c.chunk_id, c.text, c.heading_path) for c in chunks if c.heading_path != ("Part 1",)]

    assert untouched(old) == untouched(new)
    changed_old = {c.chunk_id for c in old if c.heading_path == ("Part 1",)}
    changed_new = {c.chunk_id for c in new if c.heading_path == ("Part 1",)}
    assert changed_old != changed_new


def test_empty_and_heading_only_documents_give_no_chunks(minilm_tokenizer: Any) -> None:
    assert chunk_document(_doc(""), minilm_tokenizer, max_tokens=32) == []
    assert chunk_document(_doc("# Only\n\n## Headings\n"), minilm_tokenizer, max_tokens=32) == []


def test_max_tokens_beyond_the_model_limit_is_refused(minilm_tokenizer: Any) -> None:
    limit = minilm_tokenizer.model_max_length - 2  # [CLS] and [SEP]
    chunk_document(_doc("# A\n\nok"), minilm_tokenizer, max_tokens=limit)
    with pytest.raises(ValueError, match="max_tokens"):
        chunk_document(_doc("# A\n\nok"), minilm_tokenizer, max_tokens=limit + 1)
    with pytest.raises(ValueError, match="overlap_tokens"):
        chunk_document(_doc("# A\n\nok"), minilm_tokenizer, max_tokens=32, overlap_tokens=32)


def test_mixed_content_respects_the_bound_everywhere(minilm_tokenizer: Any) -> None:
    # URLs, CJK without spaces, code lines and long words: tokenization differs most when cut apart.
    parts = [
        "# Mixed\n",
        "https://example.com/" + "a-very-long-path-segment/" * 60,
        "東京は日本の首都です" * 80,
        "\n".join(f"    result_{i} = compute(alpha={i}, beta='{i * 7}')" for i in range(80)),
        "Pneumonoultramicroscopicsilicovolcanoconiosis" * 30,
    ]
    doc = _doc("\n\n".join(parts))
    for max_tokens in (16, 50, 254):
        chunks = chunk_document(doc, minilm_tokenizer, max_tokens=max_tokens)
        _assert_invariants(doc, chunks, minilm_tokenizer, max_tokens)
        assert len(chunks) > 3


def test_chunk_that_grows_when_tokenized_alone_is_recut() -> None:
    # A tiny WordPiece built here: "abcdef" is [abcd, ##ef] in context, but a chunk starting at "ef" reads as
    # [e, ##f], one token more. The chunker must notice and cut that chunk again.
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["[UNK]", "abcd", "##ef", "e", "##f"])}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    doc = _doc("abcdef abcdef abcdef abcdef", kind="text", doc_id="t.txt")
    assert count_tokens(tokenizer, "ef abcdef") == 4  # the window the section-level count thinks is 3
    chunks = chunk_document(doc, tokenizer, max_tokens=3)
    _assert_invariants(doc, chunks, tokenizer, 3)
    assert [c.text for c in chunks] == ["abcdef abcd", "ef abcd", "ef", "abcdef"]
