"""Markdown as site generators write it: front matter, shortcodes and Setext headings, read from real files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorag.corpus.chunker import chunk_document
from lorag.corpus.markup import FrontMatter, split_front_matter, strip_shortcodes
from lorag.corpus.model import Document
from lorag.corpus.reader import read_document
from lorag.corpus.sections import split_sections

HUGO_PAGE = """---
title: Configure the hive monitor
date: 2024-03-01
weight: 30
tags: [sensors, setup]
aliases:
  - /old/monitor/
---

The monitor reports hive weight every hour.

## Calibration

{{< note >}}
Calibrate on a level stand.
{{< /note >}}

{{% alert title="Warning" color="warning" %}}
Never calibrate with bees inside.
{{% /alert %}}
"""


def _read(tmp_path: Path, name: str, text: str) -> Document:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    doc = read_document(tmp_path, name, 100_000)
    assert isinstance(doc, Document), doc
    return doc


def test_yaml_front_matter_becomes_title_and_metadata_not_chunk_text(tmp_path: Path, minilm_tokenizer: Any) -> None:
    doc = _read(tmp_path, "monitor.md", HUGO_PAGE)

    assert doc.title == "Configure the hive monitor"
    assert doc.metadata == {
        "date": "2024-03-01", "weight": 30, "tags": ["sensors", "setup"], "aliases": ["/old/monitor/"]
    }
    chunks = chunk_document(doc, minilm_tokenizer, max_tokens=64)
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Configure the hive monitor",), "The monitor reports hive weight every hour."),
        (
            ("Configure the hive monitor", "Calibration"),
            "Calibrate on a level stand.\n\nNever calibrate with bees inside.",
        ),
    ]
    assert not any("weight: 30" in c.text or "{{" in c.text for c in chunks)


def test_toml_front_matter(tmp_path: Path) -> None:
    doc = _read(tmp_path, "toml.md", '+++\ntitle = "Queens"\ndraft = false\n[params]\nicon = "crown"\n+++\nBody.\n')
    assert (doc.title, doc.metadata, doc.text) == ("Queens", {"draft": False, "params": {"icon": "crown"}}, "Body.\n")


def test_a_first_heading_that_repeats_the_title_is_not_repeated(minilm_tokenizer: Any) -> None:
    doc = Document("p.md", "# Queens\n\nText.\n\n## Marking\n\nDots.\n", "markdown", "0" * 32, 1, title="Queens")
    chunks = chunk_document(doc, minilm_tokenizer, max_tokens=64)
    assert [c.heading_path for c in chunks] == [("Queens",), ("Queens", "Marking")]


def test_malformed_front_matter_is_reported_and_dropped_not_a_crash(tmp_path: Path) -> None:
    bad_yaml = _read(tmp_path, "bad.md", "---\ntitle: [unclosed\nweight: 1\n---\nStill a useful page.\n")
    assert bad_yaml.text == "Still a useful page.\n" and bad_yaml.title is None and bad_yaml.metadata == {}
    assert [n.rule for n in bad_yaml.notes] == ["front_matter_invalid"] and "YAML" in bad_yaml.notes[0].detail

    not_a_mapping = _read(tmp_path, "list.md", "---\n- just\n- a list\n---\nText.\n")
    assert not_a_mapping.text == "---\n- just\n- a list\n---\nText.\n"  # a list between two rules: content
    assert (not_a_mapping.title, not_a_mapping.notes) == (None, ())

    bad_toml = _read(tmp_path, "bad-toml.md", '+++\ntitle = "unterminated\n+++\nText.\n')
    assert bad_toml.text == "Text.\n" and "TOML" in bad_toml.notes[0].detail


def test_yaml_alias_bomb_is_refused_quickly() -> None:
    # Nine levels of nine aliases: a billion leaves if expanded. safe_load shares them; the walk must stop.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    front = split_front_matter("---\n" + "\n".join(lines) + "\n---\nBody\n")
    assert front.body == "Body\n" and front.note is not None and "more than" in front.note.detail


def test_a_leading_rule_without_a_closing_line_is_not_front_matter() -> None:
    text = "---\n\nA page that starts with a thematic break.\n"
    front = split_front_matter(text)
    assert (front.body, front.title, front.note) == (text, None, None)
    between_rules = "---\nA paragraph between two rules.\n---\nMore.\n"
    assert split_front_matter(between_rules) == FrontMatter(between_rules)
    assert split_front_matter("Text first\n---\ntitle: x\n---\n").body.startswith("Text first")


def test_empty_front_matter_is_removed() -> None:
    front = split_front_matter("---\n---\nBody\n")
    assert (front.body, front.title, front.metadata, front.note) == ("Body\n", None, {}, None)


def test_shortcodes_are_stripped_and_paired_content_kept() -> None:
    text = (
        'See {{< ref "install.md" >}} first.\n'
        "{{< tabpane >}}\n{{< tab header=\"Linux\" >}}\nUse apt.\n{{< /tab >}}\n{{< /tabpane >}}\n"
        "{{% notice info %}}Inner **prose**.{{% /notice %}}\n"
        "{% include figure.html src='a.png' %}\n"
        "{% comment %}internal note, not content{% endcomment %}\n"
        "{% highlight python %}\nprint('hi')\n{% endhighlight %}\n"
        '{{</* youtube id="x" */>}}\n'
    )
    out = strip_shortcodes(text)
    assert out == "See  first.\nUse apt.\nInner **prose**.\nprint('hi')\n"
    assert "{{" not in out and "{%" not in out and "internal note" not in out


def test_shortcodes_inside_fenced_code_are_kept() -> None:
    text = "Before {{< x >}}.\n\n```go-html-template\n{{< figure src=\"a.png\" >}}\n{% raw %}\n```\n\nAfter.\n"
    assert strip_shortcodes(text) == (
        "Before .\n\n```go-html-template\n{{< figure src=\"a.png\" >}}\n{% raw %}\n```\n\nAfter.\n"
    )


def test_setext_headings_are_headings() -> None:
    text = (
        "Guide\n=====\n\nIntro.\n\nInstall\n-------\n\nSteps.\n\n---\n\nStill install (a rule, not a heading).\n\n"
        "- a list item\n---\n\n```\nCode\n---\n```\n\nTwo line\nheading\n===\n\nEnd.\n"
    )
    sections = split_sections(text, "markdown")
    assert [s.heading_path for s in sections] == [("Guide",), ("Guide", "Install"), ("Two line heading",)]
    assert text[sections[1].start : sections[1].end].strip().endswith("```")
    assert "Two line" not in text[sections[2].start : sections[2].end]


def test_html_text_over_a_rule_is_not_a_setext_heading(tmp_path: Path) -> None:
    doc = _read(tmp_path, "page.html", "<h1>Manual</h1><p>Totals<br>=====<br>all hives</p>")
    assert [s.heading_path for s in split_sections(doc.text, doc.kind)] == [("Manual",)]
