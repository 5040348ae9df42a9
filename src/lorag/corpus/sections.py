"""Split a document's text into sections by its headings, keeping the path of enclosing headings.

Markdown (and HTML, which the reader turns into Markdown headings): ATX headings `#`..`######` and Setext
headings (a paragraph underlined with `===` for level 1 or `---` for level 2), ignored inside fenced code blocks.
As in CommonMark, `---` under a blank line is a thematic break, and so is one under a list item, a quote or a
table row (those are not paragraphs).
reStructuredText: a title line underlined, and optionally overlined, with one repeated punctuation character;
as in docutils, a style's level is the order in which it first appears in the document, and an overlined style
differs from the same character used as underline only. Plain text has no headings: one section.

A document title (Markdown front matter `title`) is the root of every section's heading path; a first-level
heading that repeats it is not repeated in the path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lorag.corpus.model import DocKind

_ATX = re.compile(r" {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_LINE = re.compile(r"[^\n]*")
# A whole line of one repeated non-alphanumeric printable ASCII character (any RST adornment character).
_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1+[ \t]*$")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*$")
# Lines that start a block other than a paragraph (indented code, list item, quote, table, HTML, thematic
# break): neither they nor their lazy continuation lines can be the text of a Setext heading.
_NOT_PARAGRAPH = re.compile(
    r" {4}|\t| {0,3}(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)| {0,3}[>|<]| {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$"
)


@dataclass(frozen=True)
class Section:
    """The body of one section: `text[start:end]` of the document, heading lines excluded."""

    heading_path: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True)
class _Heading:
    start: int  # first character of the heading's first line (its overline in RST)
    end: int  # end of its last line
    level: int
    title: str


def split_sections(text: str, kind: DocKind, title: str | None = None) -> list[Section]:
    """Sections in document order; sections whose body is only whitespace are left out.

    `title` (the document's own title, e.g. from front matter) heads every path.
    """
    if kind == "text":
        headings: list[_Heading] = []
    elif kind == "rst":
        headings = _rst_headings(text)
    else:
        # HTML arrives as Markdown whose only headings are the `#` lines the converter wrote: a paragraph that
        # happens to sit over a line of '=' or '-' there is text, not a Setext heading.
        headings = _markdown_headings(text, setext=kind == "markdown")
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []  # (level, title) of the enclosing headings, outermost first
    pos = 0
    for heading in headings:
        sections.append(Section(tuple(t for _, t in stack), pos, heading.start))
        while stack and stack[-1][0] >= heading.level:
            stack.pop()
        stack.append((heading.level, heading.title))
        pos = heading.end
    sections.append(Section(tuple(t for _, t in stack), pos, len(text)))
    kept = [s for s in sections if text[s.start : s.end].strip()]
    if not title:
        return kept
    return [Section(_rooted(title, s.heading_path), s.start, s.end) for s in kept]


def _rooted(title: str, path: tuple[str, ...]) -> tuple[str, ...]:
    return path if path[:1] == (title,) else (title, *path)


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, newline excluded. Only '\\n' ends a line (the reader normalised them)."""
    spans = []
    pos = 0
    while pos <= len(text):
        match = _LINE.match(text, pos)
        assert match is not None  # [^\n]* always matches
        spans.append((pos, match.end()))
        pos = match.end() + 1
    return spans


def _markdown_headings(text: str, setext: bool = True) -> list[_Heading]:
    headings = []
    fence: str | None = None  # the opening fence while inside a fenced code block
    paragraph: list[tuple[int, int]] = []  # lines of the paragraph being read (Setext heading text candidates)
    other_block = False  # inside a list item, quote, table...: its lines are not a paragraph until a blank line
    for start, end in _lines(text):
        line = text[start:end]
        fence_match = _FENCE.match(line)
        if fence is not None:
            marker = fence_match.group(1) if fence_match else ""
            if marker[:1] == fence[0] and len(marker) >= len(fence) and line.strip() == marker:
                fence = None
            continue
        underline = _SETEXT.match(line) if paragraph and setext else None
        if underline:
            title = " ".join(text[s:e].strip() for s, e in paragraph)
            headings.append(_Heading(paragraph[0][0], end, 1 if underline.group(1)[0] == "=" else 2, title))
            paragraph = []
            continue
        atx = _ATX.match(line)
        if fence_match:
            fence = fence_match.group(1)
        elif atx:
            headings.append(_Heading(start, end, len(atx.group(1)), atx.group(2).strip()))
        elif not line.strip():
            other_block = False
        elif paragraph or not (other_block or _NOT_PARAGRAPH.match(line)):
            paragraph.append((start, end))
            continue
        else:
            other_block = True
        paragraph = []
    return headings


def _adornment(line: str) -> str | None:
    match = _ADORNMENT.match(line)
    return match.group(1) if match else None


def _rst_headings(text: str) -> list[_Heading]:
    spans = _lines(text)
    lines = [text[s:e] for s, e in spans]
    styles: dict[tuple[str, bool], int] = {}  # (character, overlined) -> level, in order of first appearance
    headings = []
    i = 0
    after_blank = True  # docutils only starts a title where a new block may start
    while i < len(lines):
        found = _rst_title_at(lines, i) if after_blank else None
        if found is None:
            after_blank = not lines[i].strip()
            i += 1
            continue
        title, style, height = found
        level = styles.setdefault(style, len(styles) + 1)
        headings.append(_Heading(spans[i][0], spans[i + height - 1][1], level, title))
        i += height
        after_blank = True
    return headings


def _rst_title_at(lines: list[str], i: int) -> tuple[str, tuple[str, bool], int] | None:
    """(title, style, number of lines) when a section title starts at line i."""
    line = lines[i]
    char = _adornment(line)
    if char is not None and i + 2 < len(lines):  # overline, title, underline
        title, under = lines[i + 1].strip(), lines[i + 2].rstrip()
        if (
            title
            and _adornment(lines[i + 1]) is None
            and _adornment(under) == char
            and len(under) == len(line.rstrip())
            and len(under) >= len(title)
        ):
            return title, (char, True), 3
        return None
    if char is None and line.strip() and not line[0].isspace() and i + 1 < len(lines):
        under = lines[i + 1].rstrip()
        under_char = _adornment(under)
        # docutils accepts a short underline (with a warning) from 4 characters on.
        if under_char is not None and (len(under) >= len(line.rstrip()) or len(under) >= 4):
            return line.strip(), (under_char, False), 2
    return None
