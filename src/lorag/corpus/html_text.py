"""HTML to plain text that keeps the structure the chunker needs.

Headings become Markdown ATX lines (`## Title`), block elements become paragraph breaks, `<pre>` becomes a
fenced block (so a `# comment` inside code is never taken for a heading), and script/style/head content is
dropped. Only the standard library's html.parser is used: it tolerates broken markup and never fetches anything.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_DROP = {"script", "style", "head", "noscript", "template", "svg", "iframe", "object"}
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "blockquote", "ul", "ol",
    "li", "dl", "dt", "dd", "table", "tr", "figure", "figcaption", "form", "fieldset", "address", "details",
    "summary", "hr", "body", "html",
}  # fmt: skip
_SPACES = re.compile(r"[ \t\n\f\v]+")


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []  # finished blocks, joined by blank lines at the end
        self._inline: list[str] = []  # text of the block being built
        self._dropping: list[str] = []  # open elements whose content is dropped
        self._pre_depth = 0
        self._heading: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and "head" in self._dropping:
            self._dropping.clear()  # </head> may be omitted in valid HTML; <body> ends it
        if tag in _DROP:
            self._dropping.append(tag)
        if self._dropping:
            return
        if tag in _HEADINGS or tag in _BLOCKS or tag == "pre":
            self._flush()
        if tag in _HEADINGS:
            self._heading = _HEADINGS[tag]
        elif tag == "pre":
            self._pre_depth += 1
        elif tag == "li":
            self._inline.append("- ")
        elif tag == "br":
            self._inline.append("\n")
        elif tag in {"td", "th"}:
            self._inline.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._dropping:
            return
        if tag == "br":
            self._inline.append("\n")
        elif tag in _BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            if tag in self._dropping:
                del self._dropping[len(self._dropping) - 1 - self._dropping[::-1].index(tag) :]
            return
        if self._dropping:
            return
        if tag == "pre" and self._pre_depth:
            self._flush_pre()
            self._pre_depth -= 1
        elif tag in _HEADINGS or tag in _BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._dropping:
            # Outside <pre>, a newline in the source is only a space; line breaks come from <br>.
            self._inline.append(data if self._pre_depth else _SPACES.sub(" ", data))

    def _flush(self) -> None:
        if self._pre_depth:
            return  # block tags inside <pre> do not end it
        lines = [_SPACES.sub(" ", line).strip() for line in "".join(self._inline).split("\n")]
        text = "\n".join(line for line in lines if line)
        self._inline = []
        if self._heading is not None:
            title = _SPACES.sub(" ", text).strip()
            if title:
                self.blocks.append("#" * self._heading + " " + title)
            self._heading = None
        elif text.strip("- "):
            # A paragraph that starts with '#' would read as a heading to the chunker: escape it as Markdown does.
            self.blocks.append("\\" + text if text.startswith("#") else text)

    def _flush_pre(self) -> None:
        code = "".join(self._inline).strip("\n")
        self._inline = []
        if code.strip():
            self.blocks.append("```\n" + code.replace("```", "` ` `") + "\n```")

    def close(self) -> None:
        super().close()
        if self._pre_depth:
            self._flush_pre()
            self._pre_depth = 0
        self._flush()


def html_to_text(html: str) -> str:
    """Readable text of an HTML page: headings as `#` lines, paragraphs separated by blank lines."""
    builder = _TextBuilder()
    builder.feed(html)
    builder.close()
    return "\n\n".join(builder.blocks)
