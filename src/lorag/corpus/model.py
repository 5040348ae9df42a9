"""The records that flow through the knowledge track: documents, rejected files, chunks."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

DocKind = Literal["markdown", "text", "rst", "html"]


def text_hash(text: str) -> str:
    """Content address of a piece of text (the embedding cache key, with the embedder fingerprint)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_uuid(doc_id: str, chunk_text_hash: str, occurrence: int) -> str:
    """Deterministic chunk id, shaped as a UUID so Weaviate can use it as the object id.

    Built from the document path and the chunk's own text (not its position), so editing one section of a
    page leaves the ids of the other sections unchanged. `occurrence` separates identical texts in one page.
    """
    digest = hashlib.sha256(f"{doc_id}\x00{chunk_text_hash}\x00{occurrence}".encode()).hexdigest()
    return str(uuid.UUID(hex=digest[:32]))


@dataclass(frozen=True)
class Note:
    """Something the reader changed or could not use in a document it still indexes; always reported.

    `rule` is "transcoded" (decoded from a guessed encoding, corpus.detect_encoding) or "front_matter_invalid"
    (a front matter block that does not parse: dropped from the text, the page indexed without its metadata).
    """

    rule: str
    detail: str


@dataclass(frozen=True)
class Document:
    """A readable document: `doc_id` is its POSIX path relative to the docs root."""

    doc_id: str
    text: str  # decoded, newlines normalised to \n; HTML converted to text with headings kept; Markdown without
    # its front matter and site-generator shortcodes (see corpus/markup.py): only what a reader sees is embedded
    kind: DocKind
    content_md5: str  # md5 of the raw bytes: the same hash DVC records in its manifest
    size_bytes: int
    encoding: str = "utf-8"
    title: str | None = None  # front matter `title`: the root of every chunk's heading path
    # The rest of the front matter (JSON-safe values); kept with the document, never embedded.
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Rejected:
    """A file that could not be read as a document; it is reported and quarantined, never silently dropped."""

    doc_id: str
    rule: str  # e.g. "symlink_escapes_root", "too_large", "binary", "invalid_encoding", "unsupported_type"
    detail: str
    size_bytes: int = 0


@dataclass(frozen=True)
class Chunk:
    """A heading-aware, token-bounded slice of one document."""

    chunk_id: str
    doc_id: str
    text: str
    text_hash: str
    heading_path: tuple[str, ...]
    start: int  # character offsets into Document.text
    end: int
    ordinal: int  # position of the chunk within its document
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def heading(self) -> str:
        return " > ".join(self.heading_path)
