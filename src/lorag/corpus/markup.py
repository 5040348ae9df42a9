"""Markdown as site generators write it: front matter and shortcodes are markup, not prose.

Front matter (Jekyll, Hugo, MkDocs, Docusaurus...): a YAML block between `---` lines, or a TOML block between
`+++` lines, at the very start of the file. Its `title` becomes the document title (the root of every chunk's
heading path); the other keys become document metadata, kept with the document and never embedded. A block that
is delimited but does not parse is dropped all the same (the site generator would not show it either) and the
document carries a "front_matter_invalid" note, so the run reports it instead of embedding YAML as prose.
A leading `---` with no closing line, or a block that parses to something other than keys and values (a
paragraph or a list between two thematic breaks), is content, not front matter: the text is left as it is.

Shortcodes: Hugo `{{< name args >}}` / `{{% name %}}` (and their closing `{{< /name >}}`), Liquid `{% tag %}`.
The tags are removed and whatever they wrap is kept, so the prose inside a paired shortcode (a note, a tab, a
highlighted snippet) stays searchable. The one exception is Liquid's `{% comment %}`: a comment is not content.
Fenced code blocks are left untouched: a page that documents shortcodes shows them in code, as text.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from lorag.corpus.model import Note

_YAML = re.compile(r"---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_TOML = re.compile(r"\+\+\+[ \t]*\n(.*?\n)?\+\+\+[ \t]*(?:\n|\Z)", re.S)
# Hugo shortcodes (also the `{{</* */>}}` form documentation uses to show one literally) and Liquid tags. A tag
# may span lines (long argument lists) but not a whole page: the bound keeps an unclosed `{{<` from making the
# scan quadratic.
_HUGO = re.compile(r"\{\{<.{0,2000}?>\}\}|\{\{%.{0,2000}?%\}\}", re.S)
_LIQUID_COMMENT = re.compile(r"\{%-?\s*comment\s*-?%\}.*?\{%-?\s*endcomment\s*-?%\}", re.S)
_LIQUID = re.compile(r"\{%.{0,2000}?%\}", re.S)
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_MARK = "\x00"  # where a tag was: the reader refuses UTF-8 text with NUL bytes, so none is lost in practice
# Converting front matter values visits at most this many nodes: YAML aliases can make a small file expand
# into billions of nodes ("billion laughs"); safe_load shares them, a naive walk would not.
_MAX_NODES = 10_000


@dataclass(frozen=True)
class FrontMatter:
    body: str  # the text after the front matter block (the whole text when there is none)
    title: str | None = None
    metadata: dict[str, Any] | None = None
    note: Note | None = None


def split_front_matter(text: str) -> FrontMatter:
    """Separate a leading YAML (`---`) or TOML (`+++`) block from the text and parse it."""
    for pattern, parse, name in ((_YAML, _parse_yaml, "YAML"), (_TOML, _parse_toml, "TOML")):
        match = pattern.match(text)
        if match is None:
            continue
        body = text[match.end() :]
        try:
            data = parse(match.group(1) or "")
            if not isinstance(data, dict):
                # Plain text or a list between two rules (`---`) is content, not front matter: keep it all.
                return FrontMatter(text)
            metadata = _json_safe(data, [_MAX_NODES])
        except (ValueError, RecursionError) as err:  # yaml.YAMLError and tomllib.TOMLDecodeError are ValueErrors
            detail = f"{name} front matter does not parse ({_first_line(err)}); indexed without it: fix the block"
            return FrontMatter(body, note=Note("front_matter_invalid", detail))
        title = metadata.pop("title", None)
        title = " ".join(str(title).split()) if isinstance(title, (str, int, float)) else None
        return FrontMatter(body, title or None, metadata)
    return FrontMatter(text)


def _parse_yaml(block: str) -> Any:
    import yaml

    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError as err:
        raise ValueError(str(err)) from err
    return {} if data is None else data


def _parse_toml(block: str) -> Any:
    import tomllib

    return tomllib.loads(block)


def _json_safe(value: Any, budget: list[int]) -> Any:
    """Plain JSON types only (dates become ISO strings), so metadata crosses process boundaries as data."""
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"more than {_MAX_NODES} values (YAML aliases expanding?)")
    if isinstance(value, dict):
        return {str(k): _json_safe(v, budget) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v, budget) for v in value]
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _first_line(err: BaseException) -> str:
    """The parser's message on one line, short enough for a report row."""
    text = " ".join(str(err).split())
    return (text[:200] + "...") if len(text) > 200 else (text or type(err).__name__)


def strip_shortcodes(text: str) -> str:
    """Remove shortcode tags outside fenced code blocks; a line that held only tags is removed with them."""
    runs: list[tuple[bool, list[str]]] = []  # (is code, lines), consecutive runs covering the whole text
    fence: str | None = None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        in_code = fence is not None or match is not None
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and match:
            marker = match.group(1)
            if marker[0] == fence[0] and len(marker) >= len(fence) and line.strip() == marker:
                fence = None
        if runs and runs[-1][0] == in_code:
            runs[-1][1].append(line)
        else:
            runs.append((in_code, [line]))
    return "\n".join("\n".join(lines) if code else _strip_prose("\n".join(lines)) for code, lines in runs)


def _strip_prose(text: str) -> str:
    """Tags become a marker first, so a line that held only tags can go entirely (no runs of blank lines)."""
    for pattern in (_LIQUID_COMMENT, _HUGO, _LIQUID):
        text = pattern.sub(_MARK, text)
    if _MARK not in text:
        return text
    lines = [line for line in text.split("\n") if not (_MARK in line and not line.replace(_MARK, "").strip())]
    return "\n".join(lines).replace(_MARK, "")


def normalise_markdown(text: str) -> tuple[str, str | None, dict[str, Any], tuple[Note, ...]]:
    """(text, title, metadata, notes) of a Markdown page: front matter parsed off, shortcodes stripped."""
    front = split_front_matter(text)
    notes = (front.note,) if front.note else ()
    return strip_shortcodes(front.body), front.title, front.metadata or {}, notes
