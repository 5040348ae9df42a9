"""Training examples for the behavior track: the record, its JSONL files, the grounded builder, the split.

The answer format the adapter learns is the one the RAG side assembles at serving time: it lives in
`lorag.answer.format` (`format_context`, `format_prompt`, `format_cited_answer`), shared with evaluation,
validation and retrieval. `chat_messages` turns an example into the chat turns training encodes.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lorag.answer.format import (
    PassageLike,
    chat_turns,
    format_cited_answer,
    format_context,
    format_prompt,
)

REQUIRED_FIELDS = ("id", "instruction", "response")


@dataclass
class Example:
    id: str
    instruction: str
    response: str
    context: str | None = None
    sources: list[str] = field(default_factory=list)  # doc_ids the response rests on (the split key)


@dataclass(frozen=True)
class Question:
    """One line of a questions file: a question, its reference answer and the document that answers it."""

    id: str
    question: str
    answer: str
    doc_id: str


@dataclass(frozen=True)
class BadLine:
    """A JSONL line that is not a valid record; reported (and quarantined), never silently skipped."""

    line_no: int  # 1-based
    reason: str
    raw: str


class GoldPassageMissing(LookupError):
    """The gold document of a question could not be placed in its context."""


# ---------------------------------------------------------------- chat turns


def chat_messages(example: Example) -> list[dict[str, str]]:
    """The example as chat turns: what a chat template renders and what the training loop should use."""
    return chat_turns(format_prompt(example.instruction, example.context), example.response)


# ---------------------------------------------------------------- JSONL files


def _parse_record(line: str) -> Example | str:
    """An Example, or the reason the line is not one."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"malformed JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    missing = [f for f in REQUIRED_FIELDS if f not in obj]
    if missing:
        return f"missing field(s): {', '.join(missing)}"
    unknown = sorted(set(obj) - {"id", "instruction", "response", "context", "sources"})
    if unknown:
        return f"unknown field(s): {', '.join(unknown)}"
    wrong = [f for f in REQUIRED_FIELDS if not isinstance(obj[f], str)]
    if obj.get("context") is not None and not isinstance(obj["context"], str):
        wrong.append("context")
    sources = obj.get("sources", [])
    if not (isinstance(sources, list) and all(isinstance(s, str) for s in sources)):
        wrong.append("sources")
    if wrong:
        return f"wrong type for field(s): {', '.join(wrong)} (strings; sources is a list of strings)"
    return Example(obj["id"], obj["instruction"], obj["response"], obj.get("context"), list(sources))


def read_examples(path: Path | str) -> tuple[list[Example], list[BadLine]]:
    """Read a JSONL file of examples. Blank lines are ignored; every other unreadable line is a BadLine."""
    numbered, bad = read_numbered_examples(path)
    return [ex for _, ex in numbered], bad


def read_numbered_examples(path: Path | str) -> tuple[list[tuple[int, Example]], list[BadLine]]:
    """Like `read_examples`, with the 1-based line number of each example (for reports and quarantine)."""
    examples: list[tuple[int, Example]] = []
    bad: list[BadLine] = []
    with Path(path).open(encoding="utf-8") as fh:
        for line_no, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            parsed = _parse_record(raw)
            if isinstance(parsed, Example):
                examples.append((line_no, parsed))
            else:
                bad.append(BadLine(line_no, parsed, raw.rstrip("\n")))
    return examples, bad


def example_line(example: Example) -> str:
    return json.dumps(asdict(example), ensure_ascii=False)


def write_examples(examples: Iterable[Example], path: Path | str) -> Path:
    """Write one JSON object per line (UTF-8), creating the folder."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(example_line(e) + "\n" for e in examples), encoding="utf-8")
    return out


def read_questions(path: Path | str) -> tuple[list[Question], list[BadLine]]:
    """Read `{"id","question","answer","doc_id"}` lines; unreadable lines come back as BadLines."""
    questions: list[Question] = []
    bad: list[BadLine] = []
    keys = ("id", "question", "answer", "doc_id")
    with Path(path).open(encoding="utf-8") as fh:
        for line_no, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                bad.append(BadLine(line_no, f"malformed JSON: {exc.msg}", raw.rstrip("\n")))
                continue
            if not isinstance(obj, dict) or not all(isinstance(obj.get(k), str) for k in keys):
                bad.append(BadLine(line_no, f"needs string fields {', '.join(keys)}", raw.rstrip("\n")))
                continue
            questions.append(Question(*(obj[k] for k in keys)))
    return questions, bad


# ---------------------------------------------------------------- grounded builder

Retrieve = Callable[[str, int], Sequence[PassageLike]]
GoldLookup = Callable[[str, str], PassageLike | None]


def build_grounded_examples(
    questions: Sequence[Question], retrieve: Retrieve, k: int, gold_passage: GoldLookup | None = None
) -> list[Example]:
    """One example per question: retrieved context, the question, the reference answer citing the gold doc.

    `retrieve(query, k)` returns passages best first. When the gold document is not among the top k, its
    best passage replaces the lowest-ranked one: an example whose context lacks the right source would teach
    the adapter to answer from memory or to cite the wrong document. That passage comes from
    `gold_passage(question, doc_id)` if given, else from a deeper `retrieve` (the first hit in the gold doc).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return [_grounded_example(q, retrieve, k, gold_passage) for q in questions]


def _grounded_example(q: Question, retrieve: Retrieve, k: int, gold_passage: GoldLookup | None) -> Example:
    passages = list(retrieve(q.question, k))[:k]
    cited = next((n for n, p in enumerate(passages, 1) if p.doc_id == q.doc_id), None)
    if cited is None:
        gold = _find_gold(q, retrieve, k, gold_passage)
        # A fixed slot (always last, always first) would teach "cite [k]"; a slot from the id is stable.
        slot = int(hashlib.sha256(q.id.encode()).hexdigest(), 16) % min(k, len(passages) + 1)
        passages = passages[: k - 1] if len(passages) >= k else passages
        passages.insert(slot, gold)
        cited = slot + 1
    response = format_cited_answer(q.answer, [(cited, passages[cited - 1])])
    return Example(q.id, q.question, response, format_context(passages), [q.doc_id])


def _find_gold(q: Question, retrieve: Retrieve, k: int, gold_passage: GoldLookup | None) -> PassageLike:
    found = gold_passage(q.question, q.doc_id) if gold_passage else None
    if found is None:
        found = next((p for p in retrieve(q.question, max(50, 10 * k)) if p.doc_id == q.doc_id), None)
    if found is None:
        raise GoldPassageMissing(
            f"question {q.id!r}: no passage of its gold document {q.doc_id!r} was found. Check that doc_id is "
            "relative to the docs root and indexed, or pass gold_passage= to look it up directly."
        )
    return found


# ---------------------------------------------------------------- split


def _source_groups(examples: Sequence[Example]) -> list[list[int]]:
    """Indices of examples grouped so that examples sharing any source document share a group (union-find)."""
    parent = list(range(len(examples)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[str, int] = {}
    for i, ex in enumerate(examples):
        for src in ex.sources:
            j = first_with.setdefault(src, i)
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(examples)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def split_by_source(
    examples: Sequence[Example], eval_share: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Hold out about `eval_share` of the source-document groups; no document lands in both splits.

    Deterministic for a seed and independent of input order. Examples without sources form their own group.
    """
    if not 0.0 < eval_share < 1.0:
        raise ValueError(f"eval_share must be between 0 and 1 (exclusive), got {eval_share}")
    groups = _source_groups(examples)
    if len(groups) < 2:
        raise ValueError(
            f"cannot split {len(examples)} example(s) by source: they share {len(groups)} source group; "
            "add examples from more documents."
        )

    def key(group: list[int]) -> str:
        return min(",".join(sorted(examples[i].sources)) or f"id:{examples[i].id}" for i in group)

    ordered = sorted(groups, key=key)
    random.Random(seed).shuffle(ordered)
    n_eval = min(len(ordered) - 1, max(1, round(eval_share * len(ordered))))
    eval_idx = {i for group in ordered[:n_eval] for i in group}
    train = [e for i, e in enumerate(examples) if i not in eval_idx]
    held = [e for i, e in enumerate(examples) if i in eval_idx]
    return train, held


def write_split(train: Iterable[Example], eval: Iterable[Example], out_dir: Path | str) -> tuple[Path, Path]:
    """Write `train.jsonl` and `eval.jsonl` into out_dir."""
    out = Path(out_dir)
    return write_examples(train, out / "train.jsonl"), write_examples(eval, out / "eval.jsonl")
