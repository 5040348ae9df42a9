"""The one prompt / context / cited-answer format: what the adapter is trained on is what RAG serves.

Training examples, the examples suite, evaluation and retrieval all build and read answers through these
functions, so the format cannot drift between them. `format_context` numbers the passages (`[1] path > heading`
then the text), `format_prompt` puts the question above them, `format_cited_answer` ends the answer with a
`Sources:` block naming the `[n]` passages it rests on; `parse_context` and `parse_citations` read them back.
`citation` is the one way a passage is cited anywhere (search results, contexts, sources): `path > heading`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

SOURCES_HEADER = "Sources:"
_BLOCK_HEAD = re.compile(r"^\[(\d+)\] (\S.*)$")


class PassageLike(Protocol):
    """Anything with a source and a text: a `Passage`, or the index's `SearchHit`."""

    @property
    def doc_id(self) -> str: ...
    @property
    def heading(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class Passage:
    doc_id: str  # POSIX path relative to the docs root, e.g. "beekeeping/swarms.md"
    heading: str  # "Title > Section", "" when the passage sits above any heading
    text: str


def citation(passage: PassageLike) -> str:
    """`beekeeping/x.md > Heading`: the path, then the heading path when there is one."""
    return f"{passage.doc_id} > {passage.heading}" if passage.heading else passage.doc_id


def cited_doc_id(label: str) -> str:
    """The document path of a `citation` label (the part before the first ` > `)."""
    return label.split(" > ", 1)[0]


def format_context(passages: Sequence[PassageLike]) -> str:
    """Numbered blocks, `[1] doc > heading` then the text, separated by a blank line."""
    return "\n\n".join(f"[{n}] {citation(p)}\n{p.text.strip()}" for n, p in enumerate(passages, 1))


def parse_context(context: str) -> dict[int, str]:
    """Block number -> citation label, read back from `format_context` output."""
    found: dict[int, str] = {}
    for block in context.split("\n\n"):
        match = _BLOCK_HEAD.match(block.split("\n", 1)[0])
        if match:
            found[int(match.group(1))] = match.group(2)
    return found


def format_prompt(instruction: str, context: str | None) -> str:
    """The user turn: the question, then the numbered sources when there are any."""
    if not context:
        return instruction.strip()
    return f"{instruction.strip()}\n\nContext:\n{context.strip()}"


def format_cited_answer(answer: str, citations: Sequence[tuple[int, PassageLike]]) -> str:
    """The answer, then one `[n] doc > heading` line per cited context block (same numbers as the context)."""
    if not citations:
        return answer.strip()
    lines = [f"[{n}] {citation(p)}" for n, p in citations]
    return f"{answer.strip()}\n\n{SOURCES_HEADER}\n" + "\n".join(lines)


def parse_citations(response: str) -> list[int]:
    """The `[n]` block numbers listed under `Sources:` in a response (empty when it cites nothing)."""
    _, sep, tail = response.rpartition(f"\n{SOURCES_HEADER}\n")
    if not sep:
        return []
    return [int(m.group(1)) for line in tail.splitlines() if (m := _BLOCK_HEAD.match(line))]


def chat_turns(prompt: str, answer: str | None = None) -> list[dict[str, str]]:
    """The chat messages a model sees: the user turn, and the assistant's answer when training on one."""
    turns = [{"role": "user", "content": prompt}]
    return turns if answer is None else [*turns, {"role": "assistant", "content": answer}]
