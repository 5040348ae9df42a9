"""Answer one question: retrieve from the published index -> the training prompt format -> greedy generation
with the chosen adapter -> the answer with every cited `[n]` resolved to `path > heading`.

A cited number that names no passage of the context is returned with `valid: false` and no source: it is never
shown as if it were one. Without RAG there is no context, so every citation is invalid by construction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from lorag.answer.format import citation, format_context, format_prompt, parse_citations

if TYPE_CHECKING:
    from lorag.answer.generate import AnswerModel, Generation
    from lorag.config import Params
    from lorag.index.protocol import SearchHit
    from lorag.tracking.adapters import ResolvedModel


@dataclass(frozen=True)
class CitedSource:
    n: int
    valid: bool  # the number names a passage of the context
    citation: str | None  # `path > heading` of that passage; None when invalid
    doc_id: str | None
    text: str | None


@dataclass
class Answer:
    question: str
    model: str  # e.g. "challenger (version 3)"
    rag: bool
    answer: str  # the body, without the Sources: block
    output: str  # the raw generation
    citations: list[CitedSource]
    passages: list[dict[str, Any]] = field(default_factory=list)  # what was put in the prompt, numbered from 1
    prompt_tokens: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0

    @property
    def invalid_citations(self) -> list[int]:
        return [c.n for c in self.citations if not c.valid]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "invalid_citations": self.invalid_citations}


def resolve_citations(output: str, hits: list[SearchHit]) -> list[CitedSource]:
    """Each `[n]` under Sources: resolved to the n-th passage of the context (1-based), or flagged invalid."""
    out = []
    for n in dict.fromkeys(parse_citations(output)):
        if 1 <= n <= len(hits):
            hit = hits[n - 1]
            out.append(CitedSource(n, True, citation(hit), hit.doc_id, hit.text))
        else:
            out.append(CitedSource(n, False, None, None, None))
    return out


def build_prompt(question: str, hits: list[SearchHit]) -> str:
    """The user turn exactly as training examples build it (no context block without hits)."""
    return format_prompt(question, format_context(hits) if hits else None)


def retrieve(params: Params, question: str, top_k: int | None) -> list[SearchHit]:
    from lorag.retrieval.search import search

    return search(params, question, top_k=top_k or params.evaluation.top_k or params.search.top_k)


def load_for(params: Params, resolved: ResolvedModel) -> tuple[AnswerModel, str | None]:
    """The process's model with `resolved`'s adapter attached; (model, adapter name or None for base)."""
    from lorag.answer.generate import answer_model

    model = answer_model(params)
    if resolved.adapter_dir is None:
        return model, None
    name = f"v{resolved.version}"
    model.add_adapter(name, resolved.adapter_dir)
    return model, name


def make_answer(question: str, label: str, hits: list[SearchHit], rag: bool, gen: Generation) -> Answer:
    from lorag.evaluation.metrics import answer_body

    passages = [{"n": i, "citation": citation(h), "doc_id": h.doc_id, "heading": h.heading, "text": h.text,
                 "score": h.score} for i, h in enumerate(hits, 1)]
    return Answer(question, label, rag, answer_body(gen.text), gen.text, resolve_citations(gen.text, hits),
                  passages, gen.prompt_tokens, gen.generated_tokens, gen.seconds)


def ask(params: Params, question: str, model: str | None = None, *, rag: bool = True,
        top_k: int | None = None) -> tuple[Answer, str | None]:
    """(answer, note): `model` None = the champion, else the challenger, else the base (note says which)."""
    from lorag.tracking.adapters import default_spec, resolve_model

    if not question.strip():
        raise ValueError('the question is empty: lorag ask "how do I ..."')
    note = None
    if model is None:
        model, note = default_spec(params)
    resolved = resolve_model(params, model)
    hits = retrieve(params, question, top_k) if rag else []
    loaded, adapter = load_for(params, resolved)
    gen = loaded.generate(build_prompt(question, hits), adapter, params.evaluation.max_new_tokens)
    return make_answer(question, resolved.label, hits, rag, gen), note
