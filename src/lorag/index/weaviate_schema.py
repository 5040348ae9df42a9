"""How lorag's rows and names look in Weaviate: class/alias names per project, object uuids, properties, and the
conversion of rows to objects (pure: testable without a server).

Names: every protocol name `x` (a collection or an alias) of project `p` is stored as `Lorag_x__p`. Weaviate
class names must start with an uppercase letter (the `Lorag_` prefix); the `__p` suffix keeps projects that share
one cluster apart. The mapping is exact both ways because a project name never contains `__` nor ends in `_`.
Object uuids derive from the chunk_id, so writing a chunk again replaces it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from lorag.index.protocol import IndexRow, RowMeta, SearchHit, check_name

PREFIX = "Lorag_"
SEP = "__"
DEFAULT_PROJECT = "default"
VECTOR = "default"
META_COLUMNS = ["chunk_id", "doc_id", "text_hash", "heading", "start", "end", "ordinal", "data_rev"]
HIT_COLUMNS = ["chunk_id", "doc_id", "heading", "text", "start", "end", "data_rev"]
PROJECT_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*$")
UUID_NAMESPACE = uuid.UUID("5f6c8a3e-2b1d-5c47-9e0a-6c1b7d2e4f90")  # fixed: object uuids must never change


def check_project(project: str) -> str:
    if not PROJECT_PATTERN.match(project) or len(project) > 40:
        raise ValueError(
            f"Weaviate project name {project!r} is invalid: use letters and digits, single '_' between them, "
            "at most 40 characters (e.g. mydocs)"
        )
    return project


def weaviate_name(name: str, project: str = DEFAULT_PROJECT, kind: str = "collection") -> str:
    """Protocol name -> Weaviate class/alias name (`lorag_docs` of project `p` -> `Lorag_lorag_docs__p`)."""
    return f"{PREFIX}{check_name(kind, name)}{SEP}{check_project(project)}"


def protocol_name(wname: str, project: str = DEFAULT_PROJECT) -> str | None:
    """Weaviate name -> protocol name, or None for a class of another project or not made by lorag."""
    suffix = SEP + project
    if not (wname.startswith(PREFIX) and wname.endswith(suffix)) or len(wname) <= len(PREFIX) + len(suffix):
        return None
    name = wname[len(PREFIX) : -len(suffix)]
    try:
        return check_name("collection", name)
    except ValueError:
        return None


def object_uuid(chunk_id: str) -> str:
    """The Weaviate object uuid of a chunk: derived from its id, so writing a chunk again replaces it."""
    return str(uuid.uuid5(UUID_NAMESPACE, chunk_id))


def data_objects(rows: Sequence[IndexRow], dim: int) -> list[Any]:
    """Rows -> weaviate DataObjects, refusing what the embedded store refuses (duplicate ids, bad vectors)."""
    from weaviate.classes.data import DataObject

    ids = [r.meta.chunk_id for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(c for c in ids if ids.count(c) > 1)
        raise ValueError(f"chunk_id {dup} appears twice in one upsert batch; the planner must dedupe")
    vectors = [np.asarray(r.vector, dtype=np.float32).reshape(-1) for r in rows]
    bad = next((r.meta.chunk_id for r, v in zip(rows, vectors) if v.shape[0] != dim), None)
    if bad is not None:
        raise ValueError(f"the vector of {bad} does not have the collection's dim {dim}; nothing was written")
    if not all(np.isfinite(v).all() for v in vectors):
        raise ValueError("a vector holds NaN or inf; re-embed the affected chunks")
    return [
        DataObject(
            properties={k: getattr(r.meta, k) for k in META_COLUMNS} | {"text": r.text},
            uuid=object_uuid(r.meta.chunk_id),
            vector={VECTOR: v.tolist()},
        )
        for r, v in zip(rows, vectors)
    ]


def properties() -> list[Any]:
    from weaviate.classes.config import DataType, Property, Tokenization

    def key(name: str) -> Any:  # exact-match filter fields, kept out of BM25
        return Property(name=name, data_type=DataType.TEXT, tokenization=Tokenization.FIELD, index_searchable=False)

    return [
        *(key(n) for n in ("chunk_id", "doc_id", "text_hash", "data_rev")),
        Property(name="heading", data_type=DataType.TEXT, index_searchable=False),
        Property(name="text", data_type=DataType.TEXT, tokenization=Tokenization.WORD),
        *(Property(name=n, data_type=DataType.INT) for n in ("start", "end", "ordinal")),
    ]


def hit(props: dict[str, Any], score: float) -> SearchHit:
    return SearchHit(
        chunk_id=props["chunk_id"], doc_id=props["doc_id"], heading=props["heading"], text=props["text"],
        start=int(props["start"]), end=int(props["end"]), score=float(score), data_rev=props["data_rev"],
    )  # fmt: skip


def meta(props: dict[str, Any]) -> RowMeta:
    return RowMeta(**{k: int(props[k]) if k in ("start", "end", "ordinal") else props[k] for k in META_COLUMNS})


def row(obj: Any) -> IndexRow:
    vector = obj.vector[VECTOR] if isinstance(obj.vector, dict) else obj.vector
    return IndexRow(meta(obj.properties), obj.properties["text"], np.asarray(vector, dtype=np.float32))

