"""The one protocol every index store implements (embedded LanceDB, Weaviate), and the rows they hold."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

SearchMode = Literal["hybrid", "dense", "fulltext"]
# The query's vector, or a function that computes it: a store calls it only when the vector is needed, and can
# run the full-text search meanwhile (a full-text search never needs it).
QueryVector = np.ndarray | Callable[[], np.ndarray]


def resolve_vector(query_vector: QueryVector) -> np.ndarray:
    return query_vector() if callable(query_vector) else query_vector


@dataclass(frozen=True)
class RowMeta:
    """Everything stored for a chunk except its vector: what the planner compares."""

    chunk_id: str
    doc_id: str
    text_hash: str
    heading: str
    start: int
    end: int
    ordinal: int
    data_rev: str  # the data revision in which this row was last written


@dataclass(frozen=True)
class IndexRow:
    meta: RowMeta
    text: str
    vector: np.ndarray  # float32, L2-normalised, shape (dim,)


@dataclass(frozen=True)
class SearchHit:
    chunk_id: str
    doc_id: str
    heading: str
    text: str
    start: int
    end: int
    score: float
    data_rev: str


class IndexStore(Protocol):
    """A vector + full-text store with named collections, one alias per published index, and a state record.

    Writes are idempotent by chunk_id (upsert), so a re-run after a crash converges instead of duplicating.
    Stores are context managers: `with open_store(params) as store:` closes the store (and its connection).
    """

    def create_collection(self, name: str, dim: int) -> None: ...
    def drop_collection(self, name: str) -> None: ...
    def list_collections(self) -> list[str]: ...
    def count(self, collection: str) -> int: ...
    def upsert(self, collection: str, rows: Sequence[IndexRow]) -> None: ...
    def delete(self, collection: str, chunk_ids: Sequence[str]) -> int: ...
    def fetch_meta(self, collection: str, doc_ids: Sequence[str] | None = None) -> dict[str, RowMeta]: ...
    def iter_rows(self, collection: str) -> Iterator[IndexRow]: ...
    def fetch_rows(self, collection: str, chunk_ids: Sequence[str]) -> dict[str, IndexRow]:
        """The stored rows (meta, text, vector) of the given ids, looked up by id in batches; absent ids are
        simply missing from the result. What verification reads: exact, never a ranked search."""
        ...
    def search(
        self,
        collection: str,
        query_text: str,
        query_vector: QueryVector,
        top_k: int,
        alpha: float,
        mode: SearchMode = "hybrid",
    ) -> list[SearchHit]: ...
    def get_alias(self, alias: str) -> str | None: ...
    def set_alias(self, alias: str, collection: str) -> None: ...
    def load_state(self, alias: str) -> dict[str, Any] | None: ...
    def save_state(self, alias: str, state: dict[str, Any]) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> IndexStore: ...
    def __exit__(self, *exc: object) -> None: ...


class IndexStoreError(RuntimeError):
    """An index operation was refused or failed; the message says which collection or alias and how to fix it."""


# Valid in both stores: LanceDB table names, and (after the Weaviate store's prefix) Weaviate class names.
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,200}$")


def check_name(kind: str, name: str) -> str:
    """Refuse collection/alias names one of the stores could not hold, before anything is written."""
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"{kind} name {name!r} is invalid: use a letter followed by letters, digits or '_' (e.g. lorag_docs)."
        )
    return name


def check_search_args(mode: str, alpha: float) -> None:
    """The argument rules every store's search() shares, so both backends refuse the same inputs alike."""
    if mode not in ("hybrid", "dense", "fulltext"):
        raise ValueError(f"mode must be 'hybrid', 'dense' or 'fulltext', got {mode!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1] (1 = dense only, 0 = full-text only), got {alpha}")
