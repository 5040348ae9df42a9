"""The frozen question set of an evaluation: id, question, gold answer, gold source documents; and its hash.

The sample's `sample/questions.jsonl` carries gold answers written with the corpus (the grounded examples'
responses are the same sentences plus a Sources: block), so nothing is derived. With
`evaluation.exclude_trained_docs` only questions whose gold document no training example drew on are kept:
the adapter must answer from the retrieved passage, not from memory of its training data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorag.config import Params


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str
    gold_docs: tuple[str, ...]


@dataclass(frozen=True)
class QuestionSet:
    source: str
    questions: tuple[Question, ...]
    dropped_trained: int  # questions left out because a training example used their gold document

    @property
    def hash(self) -> str:
        """sha256 of the questions as canonical JSON lines (what was asked and what counts as right)."""
        lines = [json.dumps(asdict(q), sort_keys=True, ensure_ascii=False) for q in self.questions]
        return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()

    def records(self) -> list[dict]:
        return [asdict(q) for q in self.questions]


def parse_question(raw: dict, where: str) -> Question:
    docs = raw.get("doc_ids") or ([raw["doc_id"]] if raw.get("doc_id") else [])
    missing = [k for k in ("id", "question", "answer") if not str(raw.get(k) or "").strip()]
    if missing or not docs:
        need = missing + ([] if docs else ["doc_id (or doc_ids)"])
        raise ValueError(f"{where}: missing {', '.join(need)}. Each line needs id, question, answer (the gold "
                         "answer) and doc_id or doc_ids (the gold source documents, paths as the index cites them).")
    return Question(str(raw["id"]), raw["question"].strip(), raw["answer"].strip(), tuple(docs))


def trained_documents(params: Params) -> set[str]:
    """Source documents of the training split training reads (empty when there is none yet)."""
    from lorag.training.data import train_examples_path

    path = train_examples_path(params)
    if not path.is_file():
        return set()
    docs: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            docs.update(json.loads(line).get("sources") or [])
    return docs


def load_question_set(params: Params, path: Path | None = None) -> QuestionSet:
    """Read `evaluation.questions`, sorted by id, held-out filter and `max_questions` applied."""
    ev = params.evaluation
    path = Path(path or ev.questions)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no question set. Set evaluation.questions to a JSONL file of id, question, "
                                "answer, doc_id (sample/questions.jsonl is the sample's).")
    rows = [parse_question(json.loads(line), f"{path}:{i}")
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.strip()]
    rows.sort(key=lambda q: q.id)
    dropped = 0
    if ev.exclude_trained_docs:
        trained = trained_documents(params)
        kept = [q for q in rows if not trained.intersection(q.gold_docs)]
        dropped, rows = len(rows) - len(kept), kept
    if ev.max_questions is not None:
        rows = rows[: ev.max_questions]
    if not rows:
        raise ValueError(f"{path}: no question left to evaluate ({dropped} use documents the adapter was trained "
                         "on). Add held-out questions or set evaluation.exclude_trained_docs=false.")
    return QuestionSet(str(path), tuple(rows), dropped)
