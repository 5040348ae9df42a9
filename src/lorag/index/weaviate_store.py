"""The Weaviate index store (weaviate-client v4, Weaviate >= 1.32 for collection aliases).

Names: Weaviate class and alias names must start with an uppercase letter, so every protocol name `x` (a
collection or an alias) is stored as `Lorag_x` and mapped back by removing the prefix. The mapping is exact
both ways, and it also keeps lorag's collections apart from others in a shared cluster: list_collections only
shows `Lorag_*`. State records live in the `LoragState` collection, one object per alias with a deterministic
uuid (uuid5 of the alias), so saving twice overwrites instead of duplicating.

Objects use chunk_id (already a UUID string) as their Weaviate uuid; batch imports with an existing uuid
replace the object, which makes upsert idempotent. Vectors are self-provided in one named vector, "default",
with cosine distance. The dimension is recorded in the collection description (Weaviate only learns it from
the first vector) so a second embedder is refused just as the embedded store refuses it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from lorag.index.protocol import (
    IndexRow,
    IndexStoreError,
    RowMeta,
    SearchHit,
    SearchMode,
    check_name,
    check_search_args,
)

if TYPE_CHECKING:
    from lorag.config import WeaviateParams

PREFIX = "Lorag_"
STATE_COLLECTION = "LoragState"
VECTOR = "default"
META_COLUMNS = ["chunk_id", "doc_id", "text_hash", "heading", "start", "end", "ordinal", "data_rev"]
HIT_COLUMNS = ["chunk_id", "doc_id", "heading", "text", "start", "end", "data_rev"]
BATCH_SIZE = 200
DELETE_BATCH = 1000
DOC_BATCH = 50
QUERY_MAX = 10_000  # Weaviate's default QUERY_MAXIMUM_RESULTS: offset + limit may not exceed it
_DIM = re.compile(r"dim=(\d+)")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def weaviate_name(name: str, kind: str = "collection") -> str:
    """Protocol name -> Weaviate class/alias name (`lorag_docs` -> `Lorag_lorag_docs`)."""
    return PREFIX + check_name(kind, name)


def protocol_name(wname: str) -> str | None:
    """Weaviate name -> protocol name, or None for a class lorag did not create."""
    return wname[len(PREFIX) :] if wname.startswith(PREFIX) else None


def connect_weaviate(params: WeaviateParams) -> Any:
    """A connected weaviate client from the URL (and API key) in the environment variables named in params.

    localhost URLs use connect_to_local (gRPC on 50051, as in infra/ docker compose); *.weaviate.cloud uses
    connect_to_weaviate_cloud; any other URL uses connect_to_custom with gRPC on the same host (port 443 for
    https, 50051 for http). `params.embedded` starts embedded Weaviate instead (downloads it on first use).
    """
    import weaviate
    from weaviate.classes.init import Auth

    if params.embedded:
        return weaviate.connect_to_embedded()
    url = os.environ.get(params.url_env, "").strip()
    if not url:
        raise IndexStoreError(
            f"index.backend is weaviate but {params.url_env} is not set: export {params.url_env}="
            "http://localhost:8080 (see infra/) or a Weaviate Cloud URL, or use index.backend=lancedb."
        )
    key = os.environ.get(params.api_key_env, "").strip()
    auth = Auth.api_key(key) if key else None
    parsed = urlparse(url if "://" in url else f"http://{url}")
    host, secure = parsed.hostname or "localhost", parsed.scheme == "https"
    port = parsed.port or (443 if secure else 8080)
    if host in _LOCAL_HOSTS:
        return weaviate.connect_to_local(host=host, port=port, grpc_port=50051, auth_credentials=auth)
    if host.endswith((".weaviate.cloud", ".weaviate.network")):
        if auth is None:
            raise IndexStoreError(f"Weaviate Cloud needs an API key: set {params.api_key_env}")
        return weaviate.connect_to_weaviate_cloud(cluster_url=url, auth_credentials=auth)
    grpc_port = 443 if secure else 50051
    return weaviate.connect_to_custom(
        http_host=host, http_port=port, http_secure=secure,
        grpc_host=host, grpc_port=grpc_port, grpc_secure=secure, auth_credentials=auth,
    )  # fmt: skip


def _properties() -> list[Any]:
    from weaviate.classes.config import DataType, Property, Tokenization

    def key(name: str) -> Any:  # exact-match filter fields, kept out of BM25
        return Property(name=name, data_type=DataType.TEXT, tokenization=Tokenization.FIELD, index_searchable=False)

    return [
        *(key(n) for n in ("chunk_id", "doc_id", "text_hash", "data_rev")),
        Property(name="heading", data_type=DataType.TEXT, index_searchable=False),
        Property(name="text", data_type=DataType.TEXT, tokenization=Tokenization.WORD),
        *(Property(name=n, data_type=DataType.INT) for n in ("start", "end", "ordinal")),
    ]


def _hit(props: dict[str, Any], score: float) -> SearchHit:
    return SearchHit(
        chunk_id=props["chunk_id"], doc_id=props["doc_id"], heading=props["heading"], text=props["text"],
        start=int(props["start"]), end=int(props["end"]), score=float(score), data_rev=props["data_rev"],
    )  # fmt: skip


def _meta(props: dict[str, Any]) -> RowMeta:
    return RowMeta(**{k: int(props[k]) if k in ("start", "end", "ordinal") else props[k] for k in META_COLUMNS})


class WeaviateStore:
    """IndexStore on a Weaviate client. The store owns the client: close() closes it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._dims: dict[str, int] = {}

    # -- collections -----------------------------------------------------------------------------------------
    def create_collection(self, name: str, dim: int) -> None:
        """Create an empty collection; a no-op if it exists with the same dim (re-runs converge)."""
        from weaviate.classes.config import Configure, VectorDistances

        wname = weaviate_name(name)
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        if self._client.alias.get(alias_name=wname) is not None:
            raise IndexStoreError(f"{name!r} is already an alias; pick another collection name")
        if not self._client.collections.exists(wname):
            self._client.collections.create(
                wname,
                description=f"lorag chunks, dim={dim}",
                properties=_properties(),
                vector_config=Configure.Vectors.self_provided(
                    name=VECTOR,
                    vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE),
                ),
            )
        if self._dim(name) != dim:
            raise IndexStoreError(
                f"collection {name!r} exists with dim {self._dim(name)}, not {dim}: vectors of two embedders "
                "never share a collection. Drop it or create a new collection."
            )

    def drop_collection(self, name: str) -> None:
        """Drop a collection (no-op if missing). Refused while an alias points at it."""
        wname = weaviate_name(name)
        pointing = sorted(protocol_name(a) or a for a in self._client.alias.list_all(collection=wname))
        if pointing:
            raise IndexStoreError(
                f"refusing to drop {name!r}: alias(es) {', '.join(pointing)} point at it. "
                "Move the alias to another collection first (set_alias)."
            )
        self._dims.pop(name, None)
        if self._client.collections.exists(wname):
            self._client.collections.delete(wname)

    def list_collections(self) -> list[str]:
        names = (protocol_name(n) for n in self._client.collections.list_all(simple=True))
        return sorted(n for n in names if n)

    def count(self, collection: str) -> int:
        return int(self._col(collection).aggregate.over_all(total_count=True).total_count or 0)

    # -- writes ----------------------------------------------------------------------------------------------
    def upsert(self, collection: str, rows: Sequence[IndexRow]) -> None:
        """Insert or replace rows by chunk_id (the object uuid): idempotent."""
        if not rows:
            return
        col, dim = self._col(collection), self._dim(collection)
        vectors = [np.asarray(row.vector, dtype=np.float32).reshape(-1) for row in rows]
        bad = next((r.meta.chunk_id for r, v in zip(rows, vectors) if v.shape[0] != dim), None)
        if bad is not None:  # checked before the batch starts: a half-sent batch would be written anyway
            raise ValueError(f"the vector of {bad} does not have the collection's dim {dim}; nothing was written")
        with col.batch.fixed_size(batch_size=BATCH_SIZE, concurrent_requests=2) as batch:
            for row, vector in zip(rows, vectors):
                props = {k: getattr(row.meta, k) for k in META_COLUMNS} | {"text": row.text}
                batch.add_object(properties=props, uuid=row.meta.chunk_id, vector={VECTOR: vector.tolist()})
        failed = col.batch.failed_objects
        if failed:
            first = "; ".join(f.message for f in failed[:3])
            raise IndexStoreError(
                f"{len(failed)} of {len(rows)} rows were not written to {collection!r} (first errors: {first}). "
                "Fix the cause and re-run: upserts are idempotent."
            )

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
    def fetch_meta(self, collection: str, doc_ids: Sequence[str] | None = None) -> dict[str, RowMeta]:
        """Metadata of every row (or of the given documents' rows), without vectors or texts."""
        from weaviate.classes.query import Filter

        col = self._col(collection)
        if doc_ids is None:
            return {o.properties["chunk_id"]: _meta(o.properties) for o in col.iterator(return_properties=META_COLUMNS)}
        docs, out = sorted(set(doc_ids)), {}
        for i in range(0, len(docs), DOC_BATCH):
            batch = docs[i : i + DOC_BATCH]
            where = Filter.by_property("doc_id").contains_any(batch)
            found = col.query.fetch_objects(filters=where, limit=QUERY_MAX, return_properties=META_COLUMNS).objects
            if len(found) >= QUERY_MAX:  # the server cap may have cut the answer: scan instead of guessing
                wanted = set(batch)
                found = [o for o in col.iterator(return_properties=META_COLUMNS) if o.properties["doc_id"] in wanted]
            out.update({o.properties["chunk_id"]: _meta(o.properties) for o in found})
        return out

    def iter_rows(self, collection: str) -> Iterator[IndexRow]:
        """Every row with text and vector (cursor API; order unspecified)."""
        for obj in self._col(collection).iterator(include_vector=True, return_properties=[*META_COLUMNS, "text"]):
            vector = obj.vector[VECTOR] if isinstance(obj.vector, dict) else obj.vector
            yield IndexRow(_meta(obj.properties), obj.properties["text"], np.asarray(vector, dtype=np.float32))

    def search(
        self,
        collection: str,
        query_text: str,
        query_vector: np.ndarray,
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
        vector = np.asarray(query_vector, dtype=np.float32).reshape(-1).tolist()
        common = {"limit": top_k, "return_properties": HIT_COLUMNS}
        if mode == "dense" or not text:  # nothing to match on: the vector still answers
            res = query.near_vector(vector, target_vector=VECTOR, return_metadata=MetadataQuery(distance=True), **common)
            return [_hit(o.properties, 1.0 - float(o.metadata.distance)) for o in res.objects]
        if mode == "fulltext":
            res = query.bm25(text, query_properties=["text"], return_metadata=MetadataQuery(score=True), **common)
        else:
            res = query.hybrid(
                text, vector=vector, alpha=alpha, fusion_type=HybridFusion.RELATIVE_SCORE, query_properties=["text"],
                target_vector=VECTOR, return_metadata=MetadataQuery(score=True), **common,
            )  # fmt: skip
        return [_hit(o.properties, float(o.metadata.score or 0.0)) for o in res.objects]

    # -- aliases and state -----------------------------------------------------------------------------------
    def get_alias(self, alias: str) -> str | None:
        found = self._client.alias.get(alias_name=weaviate_name(alias, "alias"))
        return protocol_name(found.collection) if found is not None else None

    def set_alias(self, alias: str, collection: str) -> None:
        """Point `alias` at `collection`: create the alias, or move it in one server-side update."""
        walias, wname = weaviate_name(alias, "alias"), weaviate_name(collection)
        if not self._client.collections.exists(wname):
            raise IndexStoreError(f"cannot point alias {alias!r} at {collection!r}: no such collection")
        if self._client.alias.get(alias_name=walias) is None:
            self._client.alias.create(alias_name=walias, target_collection=wname)
        else:
            self._client.alias.update(alias_name=walias, new_target_collection=wname)

    def load_state(self, alias: str) -> dict[str, Any] | None:
        from weaviate.util import generate_uuid5

        if not self._client.collections.exists(STATE_COLLECTION):
            return None
        obj = self._client.collections.use(STATE_COLLECTION).query.fetch_object_by_id(generate_uuid5(alias))
        return json.loads(obj.properties["state"]) if obj is not None else None

    def save_state(self, alias: str, state: dict[str, Any]) -> None:
        """One object per alias, replaced as a whole (a batch write with a fixed uuid overwrites)."""
        from weaviate.classes.data import DataObject
        from weaviate.util import generate_uuid5

        check_name("alias", alias)
        try:
            encoded = json.dumps(dict(state), sort_keys=True)
        except TypeError as exc:
            raise ValueError(f"state of {alias!r} must be JSON-serialisable: {exc}") from exc
        obj = DataObject(properties={"alias": alias, "state": encoded}, uuid=generate_uuid5(alias))
        result = self._state_collection().data.insert_many([obj])
        if result.has_errors:
            raise IndexStoreError(f"saving the state of {alias!r} failed: {list(result.errors.values())[0].message}")

    def close(self) -> None:
        self._client.close()

    # -- internals -------------------------------------------------------------------------------------------
    def _col(self, name: str) -> Any:
        wname = weaviate_name(name)
        if name not in self._dims and not self._client.collections.exists(wname):
            raise IndexStoreError(
                f"collection {name!r} (Weaviate class {wname}) does not exist: create it with create_collection"
            )
        return self._client.collections.use(wname)

    def _dim(self, name: str) -> int:
        if name not in self._dims:
            description = self._client.collections.use(weaviate_name(name)).config.get().description or ""
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
                description="lorag: one state record per index alias",
                properties=[
                    Property(name="alias", data_type=DataType.TEXT, tokenization=Tokenization.FIELD),
                    Property(name="state", data_type=DataType.TEXT, index_searchable=False, index_filterable=False),
                ],
                vector_config=Configure.Vectors.self_provided(),
            )
        except UnexpectedStatusCodeError:
            if not self._client.collections.exists(STATE_COLLECTION):  # not a lost creation race: a real error
                raise
        return self._client.collections.use(STATE_COLLECTION)
