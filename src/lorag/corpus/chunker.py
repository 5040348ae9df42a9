"""Heading-aware, token-bounded chunking.

Every chunk lies inside one section (see `sections.py`) and is an exact slice of the document:
`chunk.text == doc.text[chunk.start:chunk.end]`, with no whitespace at either end. Nothing is prefixed: the
heading titles travel in `chunk.heading_path`, and a consumer that prepends them for embedding must budget for
them. A section body is cut at paragraph breaks first, then sentence ends, then line breaks, then (for a run
with none of those) at token boundaries from the tokenizer's offset mapping; the pieces are packed greedily up to
`max_tokens`. Each section is tokenized once (one batch per document); the chunks are tokenized once more to
check the bound, which must hold for the text as the embedder will see it.

Token counts exclude special tokens. The embedder adds them ([CLS] and [SEP] for all-MiniLM-L6-v2), so
`max_tokens` may be at most the model's limit minus those (256 - 2 = 254 there); `chunk_document` checks this.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from typing import Any

from lorag.corpus.model import Chunk, Document, chunk_uuid, text_hash
from lorag.corpus.sections import Section, split_sections

# Separators from coarsest to finest; a piece still over budget at one level is cut at the next.
_SEPARATORS = (
    re.compile(r"\n[ \t]*\n\s*"),  # paragraphs
    re.compile(r"(?:(?<=[.!?;:])|(?<=[.!?;:][\"')\]]))\s+"),  # sentence ends, maybe after a quote/bracket
    re.compile(r"\n\s*"),  # lines (lists, code, hard-wrapped text)
)
# A tokenizer limit above this is a "no limit" placeholder (transformers uses int(1e30)).
_NO_LIMIT = 1_000_000


@dataclass(frozen=True)
class _Span:
    start: int  # offsets into the section body
    end: int


class _Tokens:
    """Token start/end offsets of one text, for counting the tokens of any span by bisection."""

    def __init__(self, offsets: list[tuple[int, int]]) -> None:
        pairs = [(s, e) for s, e in offsets if e > s]  # zero-width tokens carry no text to cut at
        self.starts = [s for s, _ in pairs]
        self.ends = [e for _, e in pairs]

    def count(self, start: int, end: int) -> int:
        return bisect_left(self.starts, end) - bisect_left(self.starts, start)


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens in `text` as the embedder sees them, without special tokens."""
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def check_max_tokens(tokenizer: Any, max_tokens: int) -> None:
    """Refuse a chunk size the embedder would truncate (its limit minus the special tokens it adds)."""
    limit = int(tokenizer.model_max_length)
    if limit >= _NO_LIMIT:
        return
    room = limit - tokenizer.num_special_tokens_to_add(pair=False)
    if max_tokens > room:
        raise ValueError(
            f"chunking.max_tokens={max_tokens} exceeds what the embedder reads: {limit} tokens minus "
            f"{limit - room} special tokens = {room}. Lower chunking.max_tokens in params.yaml."
        )


def chunk_document(doc: Document, tokenizer: Any, max_tokens: int, overlap_tokens: int = 0) -> list[Chunk]:
    """Chunks of one document, in order; deterministic for the same text, tokenizer and settings.

    `tokenizer` is a Hugging Face fast tokenizer (it must return offset mappings). `overlap_tokens` repeats
    whole trailing pieces (sentences, paragraphs) of a chunk at the start of the next, up to that many tokens;
    chunks cut inside a run of text at token boundaries overlap by exactly that many tokens.
    """
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError(f"overlap_tokens={overlap_tokens} must be >= 0 and smaller than max_tokens={max_tokens}")
    check_max_tokens(tokenizer, max_tokens)
    sections = split_sections(doc.text, doc.kind, doc.title)
    if not sections:
        return []
    bodies = [doc.text[s.start : s.end] for s in sections]
    encoded = tokenizer(bodies, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    spans: list[tuple[Section, _Span]] = []
    for section, body, offsets in zip(sections, bodies, encoded["offset_mapping"], strict=True):
        tokens = _Tokens([tuple(o) for o in offsets])
        pieces = _split(body, _Span(0, len(body)), tokens, max_tokens, overlap_tokens, 0)
        spans.extend((section, span) for span in _pack(pieces, tokens, max_tokens, overlap_tokens))
    spans = _enforce_bound(doc.text, spans, tokenizer, max_tokens)
    return _make_chunks(doc, spans)


def _strip(body: str, span: _Span) -> _Span | None:
    text = body[span.start : span.end]
    stripped = text.strip()
    if not stripped:
        return None
    start = span.start + (len(text) - len(text.lstrip()))
    return _Span(start, start + len(stripped))


def _split(body: str, span: _Span, tokens: _Tokens, max_tokens: int, overlap: int, level: int) -> list[_Span]:
    """Pieces of `span` (whitespace-stripped), each within `max_tokens` as counted in the section."""
    stripped = _strip(body, span)
    if stripped is None:
        return []
    if tokens.count(stripped.start, stripped.end) <= max_tokens:
        return [stripped]
    if level == len(_SEPARATORS):
        return _token_windows(body, stripped, tokens, max_tokens, overlap)
    pieces: list[_Span] = []
    pos = stripped.start
    for match in _SEPARATORS[level].finditer(body, stripped.start, stripped.end):
        pieces.extend(_split(body, _Span(pos, match.start()), tokens, max_tokens, overlap, level + 1))
        pos = match.end()
    pieces.extend(_split(body, _Span(pos, stripped.end), tokens, max_tokens, overlap, level + 1))
    return pieces


def _token_windows(body: str, span: _Span, tokens: _Tokens, max_tokens: int, overlap: int) -> list[_Span]:
    """Cut a run with no usable separator at token boundaries: windows of max_tokens, overlapping by `overlap`."""
    first = bisect_left(tokens.starts, span.start)
    last = bisect_left(tokens.starts, span.end)  # exclusive
    windows = []
    stride = max_tokens - overlap
    for begin in range(first, last, stride):
        end = min(begin + max_tokens, last)
        window = _strip(body, _Span(max(tokens.starts[begin], span.start), min(tokens.ends[end - 1], span.end)))
        if window is not None:
            windows.append(window)
        if end == last:
            break
    return windows


def _pack(pieces: list[_Span], tokens: _Tokens, max_tokens: int, overlap: int) -> list[_Span]:
    """Greedily join consecutive pieces into spans of at most `max_tokens`."""
    packed: list[_Span] = []
    current: list[_Span] = []
    for piece in pieces:
        if current and tokens.count(current[0].start, piece.end) > max_tokens:
            packed.append(_Span(current[0].start, current[-1].end))
            current = _tail(current, tokens, overlap)
            if current and tokens.count(current[0].start, piece.end) > max_tokens:
                current = []
        current.append(piece)
    if current:
        packed.append(_Span(current[0].start, current[-1].end))
    return packed


def _tail(pieces: list[_Span], tokens: _Tokens, overlap: int) -> list[_Span]:
    """The trailing pieces that together hold at most `overlap` tokens (whole pieces only)."""
    if not overlap:
        return []
    end = pieces[-1].end
    keep = len(pieces)
    while keep > 0 and tokens.count(pieces[keep - 1].start, end) <= overlap:
        keep -= 1
    return pieces[keep:]


def _enforce_bound(
    text: str, spans: list[tuple[Section, _Span]], tokenizer: Any, max_tokens: int
) -> list[tuple[Section, _Span]]:
    """Re-count each chunk on its own and re-cut any over the bound.

    Counting inside the section is exact for WordPiece at whitespace, but a cut inside a word (or another
    tokenizer's context-dependent merges) can tokenize differently when the chunk stands alone.
    """
    texts = [text[sec.start + sp.start : sec.start + sp.end] for sec, sp in spans]
    if not texts:
        return spans
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    result: list[tuple[Section, _Span]] = []
    for (section, span), ids, offsets in zip(spans, encoded["input_ids"], encoded["offset_mapping"], strict=True):
        if len(ids) <= max_tokens:
            result.append((section, span))
            continue
        # Shrink the budget until the pieces fit when tokenized alone; each round only gets smaller.
        body = text[section.start + span.start : section.start + span.end]
        tokens, budget = _Tokens([tuple(o) for o in offsets]), max_tokens
        while True:
            windows = _token_windows(body, _Span(0, len(body)), tokens, budget, 0)
            if all(count_tokens(tokenizer, body[w.start : w.end]) <= max_tokens for w in windows) or budget == 1:
                break
            budget = max(1, budget * 3 // 4)
        result.extend((section, _Span(span.start + w.start, span.start + w.end)) for w in windows)
    return result


def _make_chunks(doc: Document, spans: list[tuple[Section, _Span]]) -> list[Chunk]:
    chunks = []
    seen: Counter[str] = Counter()
    for ordinal, (section, span) in enumerate(spans):
        start, end = section.start + span.start, section.start + span.end
        chunk_text = doc.text[start:end]
        digest = text_hash(chunk_text)
        chunk_id = chunk_uuid(doc.doc_id, digest, seen[digest])
        seen[digest] += 1
        chunks.append(Chunk(chunk_id, doc.doc_id, chunk_text, digest, section.heading_path, start, end, ordinal))
    return chunks
