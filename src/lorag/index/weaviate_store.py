"""The Weaviate index store (weaviate-client >= 4.16.4, Weaviate >= 1.32 for collection aliases).

A store is scoped to one project: it only lists, prunes, aliases and reads names carrying its project
(`Lorag_<name>__<project>`, see weaviate_schema). State records live in the shared `LoragState` collection, one
object per (project, alias) with a deterministic uuid, so saving twice overwrites instead of duplicating.

Objects get a deterministic uuid derived from their chunk_id (`object_uuid`), so an insert of an existing chunk
replaces it: upsert is idempotent. Writes are synchronous `insert_many` calls, one per batch: the client's batch
context waits for a partial batch and retries a lost server for about 34 minutes. Vectors are self-provided in
one named vector, "default", with cosine distance. The dimension is recorded in the collection description
(Weaviate only learns it from the first vector) so a second embedder is refused as the embedded store refuses it.
Every client error comes out as IndexStoreError, one line that says what to check.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from lorag.index.protocol import (
    IndexRow,
    IndexStoreError,
    QueryVector,
    RowMeta,
    SearchHit,
    SearchMode,
    check_name,
    check_search_args,
    resolve_vector,
)
from lorag.index.weaviate_connect import client_errors, connect_weaviate, endpoint_from_env, one_line
from lorag.index.weaviate_schema import (
    DEFAULT_PROJECT,
    HIT_COLUMNS,
    META_COLUMNS,
    PREFIX,
    UUID_NAMESPACE,
    VECTOR,
    check_project,
    data_objects,
    hit,
    meta,
    properties,
    protocol_name,
    row,
    weaviate_name,
)

if TYPE_CHECKING:
    from lorag.config import WeaviateParams

# PREFIX and connect_weaviate are imported from here by the contract suite's fixture.
__all__ = ["PREFIX", "STATE_COLLECTION", "WeaviateStore", "connect_weaviate", "open_weaviate_store"]

STATE_COLLECTION = "LoragState"
BATCH_SIZE = 200  # objects per insert_many call
FETCH_BATCH = 200  # ids per fetch_rows query (objects come back with their vectors)
DELETE_BATCH = 1000
DOC_BATCH = 50
QUERY_MAX = 10_000  # Weaviate's default QUERY_MAXIMUM_RESULTS: offset + limit may not exceed it
_DIM = re.compile(r"dim=(\d+)")
T = TypeVar("T")


def _translated(action: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Run a store method with client errors turned into one-line IndexStoreErrors naming `action`."""

    def wrap(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def inner(self: WeaviateStore, *args: Any, **kwargs: Any) -> T:
            with self._errors(action):
                return method(self, *args, **kwargs)

        return inner

    return wrap


def open_weaviate_store(params: WeaviateParams) -> WeaviateStore:
    """The store of this project (`index.weaviate.project`) on the Weaviate the environment points at."""
    endpoint = endpoint_from_env(params)
    if not params.project:
        raise IndexStoreError(
            "index.weaviate.project is not set: name this project's namespace in the Weaviate cluster, e.g. "
            "--set index.weaviate.project=mydocs (projects sharing a cluster need different names)"
        )
    return WeaviateStore(connect_weaviate(params), project=params.project, hint=endpoint.hint())


class WeaviateStore:
    """IndexStore on a connected Weaviate client, scoped to one project. The store owns the client."""

    def __init__(self, client: Any, project: str = DEFAULT_PROJECT, hint: str = "") -> None:
        self._client = client
        self.project = check_project(project)
        self._hint = hint or "check that the Weaviate this store was opened on is up and reachable"
        self._dims: dict[str, int] = {}

    def _wname(self, name: str, kind: str = "collection") -> str:
        return weaviate_name(name, self.project, kind)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except client_errors() as exc:
            raise IndexStoreError(f"Weaviate {action} failed ({one_line(exc)}): {self._hint}") from exc

    # -- collections -----------------------------------------------------------------------------------------
    @_translated("create collection")
    def create_collection(self, name: str, dim: int) -> None:
        """Create an empty collection. One that exists is an error: a build never writes into a collection that
        someone else (the live alias, a concurrent rebuild) may be reading."""
        from weaviate.classes.config import Configure, VectorDistances
        from weaviate.exceptions import UnexpectedStatusCodeError

        wname = self._wname(name)
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        if self._client.alias.get(alias_name=wname) is not None:
            raise IndexStoreError(f"{name!r} is already an alias; pick another collection name")
        exists = IndexStoreError(f"collection {name!r} already exists (Weaviate class {wname}); a build needs a new one")
        if self._client.collections.exists(wname):
            raise exists
        try:
            self._client.collections.create(
                wname,
                description=f"lorag chunks, dim={dim}",
                properties=properties(),
                vector_config=Configure.Vectors.self_provided(
                    name=VECTOR,
                    vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE),
                ),
            )
        except UnexpectedStatusCodeError:
            if self._client.collections.exists(wname):  # a concurrent creator of the same name won the race
                raise exists from None
            raise
        self._dims[name] = dim

    @_translated("drop collection")
    def drop_collection(self, name: str) -> None:
        """Drop a collection (no-op if missing). Refused while an alias points at it."""
        wname = self._wname(name)
        aliases = self._client.alias.list_all(collection=wname)
        pointing = sorted(protocol_name(a, self.project) or a for a in aliases)
        if pointing:
            raise IndexStoreError(
                f"refusing to drop {name!r}: alias(es) {', '.join(pointing)} point at it. "
                "Move the alias to another collection first (set_alias)."
            )
        self._dims.pop(name, None)
        if self._client.collections.exists(wname):
            self._client.collections.delete(wname)

    @_translated("list collections")
    def list_collections(self) -> list[str]:
        names = (protocol_name(n, self.project) for n in self._client.collections.list_all(simple=True))
        return sorted(n for n in names if n)

    @_translated("count")
    def count(self, collection: str) -> int:
        return int(self._col(collection).aggregate.over_all(total_count=True).total_count or 0)

    # -- writes ----------------------------------------------------------------------------------------------
    @_translated("upsert")
    def upsert(self, collection: str, rows: Sequence[IndexRow]) -> None:
        """Insert or replace rows by chunk_id: idempotent. Everything is checked before the first write."""
        from weaviate.exceptions import WeaviateInsertManyAllFailedError

        if not rows:
            return
        col = self._col(collection)
        objects = data_objects(rows, self._dim(collection))
        for i in range(0, len(objects), BATCH_SIZE):
            batch = objects[i : i + BATCH_SIZE]
            try:  # the client raises instead of returning errors when every object of a call failed
                result = col.data.insert_many(batch)
                errors = [e.message for e in result.errors.values()] if result.has_errors else []
            except WeaviateInsertManyAllFailedError as exc:
                errors = [one_line(exc)] * len(batch)
            if errors:
                raise IndexStoreError(
                    f"{len(errors)} of {len(batch)} rows were not written to {collection!r} (first error: "
                    f"{one_line(errors[0])}). Fix the cause and re-run: upserts are idempotent."
                )

    @_translated("delete")
    def delete(self, collection: str, chunk_ids: Sequence[str]) -> int:
        """Delete rows by chunk_id; returns how many existed."""
        from weaviate.classes.query import Filter

        col, ids, deleted = self._col(collection), sorted(set(chunk_ids)), 0
        for i in range(0, len(ids), DELETE_BATCH):
            result = col.data.delete_many(where=Filter.by_property("chunk_id").contains_any(ids[i : i + DELETE_BATCH]))
            if result.failed:
                raise IndexStoreError(f"{result.failed} deletes failed in {collection!r}; re-run (idempotent)")
            deleted += int(result.successful)
        return deleted

    # -- reads -----------------------------------------------------------------------------------------------
    @_translated("fetch metadata")
    def fetch_meta(self, collection: str, doc_ids: Sequence[str] | None = None) -> dict[str, RowMeta]:
        """Metadata of every row (or of the given documents' rows), without vectors or texts."""
        from weaviate.classes.query import Filter

        col = self._col(collection)
        if doc_ids is None:
            return {o.properties["chunk_id"]: meta(o.properties) for o in col.iterator(return_properties=META_COLUMNS)}
        docs, out = sorted(set(doc_ids)), {}
        for i in range(0, len(docs), DOC_BATCH):
            batch = docs[i : i + DOC_BATCH]
            where = Filter.by_property("doc_id").contains_any(batch)
            found = col.query.fetch_objects(filters=where, limit=QUERY_MAX, return_properties=META_COLUMNS).objects
            if len(found) >= QUERY_MAX:  # the server cap may have cut the answer: scan instead of guessing
                wanted = set(batch)
                found = [o for o in col.iterator(return_properties=META_COLUMNS) if o.properties["doc_id"] in wanted]
            out.update({o.properties["chunk_id"]: meta(o.properties) for o in found})
        return out

    @_translated("fetch rows")
    def fetch_rows(self, collection: str, chunk_ids: Sequence[str]) -> dict[str, IndexRow]:
        """Rows (meta, text, vector) by exact chunk_id, in batches; ids that are not stored are absent."""
        from weaviate.classes.query import Filter

        col, ids, out = self._col(collection), sorted(set(chunk_ids)), {}
        for i in range(0, len(ids), FETCH_BATCH):
            batch = ids[i : i + FETCH_BATCH]
            res = col.query.fetch_objects(
                filters=Filter.by_property("chunk_id").contains_any(batch), limit=len(batch),
                include_vector=True, return_properties=[*META_COLUMNS, "text"],
            )  # fmt: skip
            out.update((r.meta.chunk_id, r) for r in map(row, res.objects))
        return out

    def iter_rows(self, collection: str) -> Iterator[IndexRow]:
        """Every row with text and vector (cursor API; order unspecified)."""
        with self._errors("read rows"):
            for obj in self._col(collection).iterator(include_vector=True, return_properties=[*META_COLUMNS, "text"]):
                yield row(obj)

    @_translated("search")
    def search(
        self,
        collection: str,
        query_text: str,
        query_vector: QueryVector,
        top_k: int,
        alpha: float,
        mode: SearchMode = "hybrid",
    ) -> list[SearchHit]:
        """Dense (score = cosine similarity), full-text (BM25) or hybrid (relativeScoreFusion with alpha)."""
        from weaviate.classes.query import HybridFusion, MetadataQuery

        check_search_args(mode, alpha)
        if top_k <= 0:
            return []
        query, text = self._col(collection).query, (query_text or "").strip()
        common = {"limit": top_k, "return_properties": HIT_COLUMNS}
        if mode == "fulltext" and text:
            res = query.bm25(text, query_properties=["text"], return_metadata=MetadataQuery(score=True), **common)
            return [hit(o.properties, float(o.metadata.score or 0.0)) for o in res.objects]
        vector = np.asarray(resolve_vector(query_vector), dtype=np.float32).reshape(-1).tolist()
        if mode == "dense" or not text:  # nothing to match on: the vector still answers
            res = query.near_vector(vector, target_vector=VECTOR, return_metadata=MetadataQuery(distance=True), **common)
            return [hit(o.properties, 1.0 - float(o.metadata.distance)) for o in res.objects]
        res = query.hybrid(
            text, vector=vector, alpha=alpha, fusion_type=HybridFusion.RELATIVE_SCORE, query_properties=["text"],
            target_vector=VECTOR, return_metadata=MetadataQuery(score=True), **common,
        )  # fmt: skip
        return [hit(o.properties, float(o.metadata.score or 0.0)) for o in res.objects]

    # -- aliases and state -----------------------------------------------------------------------------------
    @_translated("get alias")
    def get_alias(self, alias: str) -> str | None:
        found = self._client.alias.get(alias_name=self._wname(alias, "alias"))
        return protocol_name(found.collection, self.project) if found is not None else None

    @_translated("set alias")
    def set_alias(self, alias: str, collection: str) -> None:
        """Point `alias` at `collection`: create the alias, or move it in one server-side update; then read it
        back, so a lost or concurrent update is an error instead of a silent no-op."""
        walias, wname = self._wname(alias, "alias"), self._wname(collection)
        if not self._client.collections.exists(wname):
            raise IndexStoreError(f"cannot point alias {alias!r} at {collection!r}: no such collection")
        current = self._client.alias.get(alias_name=walias)
        if current is None:
            self._client.alias.create(alias_name=walias, target_collection=wname)
        elif current.collection != wname and not self._client.alias.update(
            alias_name=walias, new_target_collection=wname
        ):
            raise IndexStoreError(f"moving alias {alias!r} to {collection!r} failed: the alias vanished; re-run")
        after = self._client.alias.get(alias_name=walias)
        if after is None or after.collection != wname:
            where = protocol_name(after.collection, self.project) if after else None
            raise IndexStoreError(
                f"alias {alias!r} points at {where!r}, not {collection!r}, right after it was set: another run "
                "moved it. Re-run once that run has finished."
            )

    @_translated("load state")
    def load_state(self, alias: str) -> dict[str, Any] | None:
        if not self._client.collections.exists(STATE_COLLECTION):
            return None
        obj = self._client.collections.use(STATE_COLLECTION).query.fetch_object_by_id(self._state_uuid(alias))
        return json.loads(obj.properties["state"]) if obj is not None else None

    @_translated("save state")
    def save_state(self, alias: str, state: dict[str, Any]) -> None:
        """One object per (project, alias), replaced as a whole (an insert with a fixed uuid overwrites)."""
        from weaviate.classes.data import DataObject

        try:
            encoded = json.dumps(dict(state), sort_keys=True)
        except TypeError as exc:
            raise ValueError(f"state of {alias!r} must be JSON-serialisable: {exc}") from exc
        props = {"alias": alias, "project": self.project, "state": encoded}
        result = self._state_collection().data.insert_many([DataObject(properties=props, uuid=self._state_uuid(alias))])
        if result.has_errors:
            raise IndexStoreError(f"saving the state of {alias!r} failed: {list(result.errors.values())[0].message}")

    @_translated("close")
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> WeaviateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------------------
    def _state_uuid(self, alias: str) -> str:
        check_name("alias", alias)
        return str(uuid.uuid5(UUID_NAMESPACE, f"state/{self.project}/{alias}"))

    def _col(self, name: str) -> Any:
        wname = self._wname(name)
        if name not in self._dims and not self._client.collections.exists(wname):
            raise IndexStoreError(
                f"collection {name!r} (Weaviate class {wname}) does not exist: create it with create_collection"
            )
        return self._client.collections.use(wname)

    def _dim(self, name: str) -> int:
        if name not in self._dims:
            description = self._client.collections.use(self._wname(name)).config.get().description or ""
            found = _DIM.search(description)
            if not found:
                raise IndexStoreError(f"collection {name!r} was not created by lorag (no dim in its description)")
            self._dims[name] = int(found.group(1))
        return self._dims[name]

    def _state_collection(self) -> Any:
        from weaviate.classes.config import Configure, DataType, Property, Tokenization
        from weaviate.exceptions import UnexpectedStatusCodeError

        if self._client.collections.exists(STATE_COLLECTION):
            return self._client.collections.use(STATE_COLLECTION)
        try:
            self._client.collections.create(
                STATE_COLLECTION,
                description="lorag: one state record per project and index alias",
                properties=[
                    Property(name="alias", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
                    Property(name="project", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
                    Property(name="state", data_type=DataType.TEXT, index_searchable=False, index_filterable=False),
                ],
                vector_config=Configure.Vectors.self_provided(),
            )
        except UnexpectedStatusCodeError:
            if not self._client.collections.exists(STATE_COLLECTION):  # not a lost creation race: a real error
                raise
        return self._client.collections.use(STATE_COLLECTION)
