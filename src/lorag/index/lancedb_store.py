"""The embedded index store: LanceDB on local disk, no server, one table per collection.

Writes are `merge_insert` upserts keyed by chunk_id. Search is always current: rows written after the last
index build are flat-scanned and deleted rows are masked by LanceDB itself, so index maintenance (compaction,
merging new rows into the full-text and vector indexes) only affects speed. The store does that maintenance at
the end of each write (see MAX_FTS_SEGMENTS and VECTOR_SEGMENT_ROWS), so callers never need a separate
"finalize" step.
Aliases and per-alias state live in a small `_lorag_meta` table; each change is one atomic merge_insert.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

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
from lorag.index.fusion import relative_score_fusion

META_TABLE = "_lorag_meta"
META_COLUMNS = ["chunk_id", "doc_id", "text_hash", "heading", "start", "end", "ordinal", "data_rev"]
HIT_COLUMNS = ["chunk_id", "doc_id", "heading", "text", "start", "end", "data_rev"]
PREDICATE_BATCH = 500  # ids per `IN (...)` predicate: keeps SQL strings and plans small
OVERFETCH = 4  # hybrid: candidates taken from each list per requested hit
# Past this many fragments (each write adds one), small ones are compacted into one.
MAX_FRAGMENTS = 16
# Full-text rows not yet in the index are tokenised and scored on every query: 1.7k of them cost 15 ms of an
# 18 ms query at 100k rows (bench/query_latency.py). So each write indexes its own rows at once as a new index
# segment (~10-20 ms for a few hundred rows, whatever the table size), and the segments are merged into one
# (which rewrites the whole index: ~0.2 s at 100k) only once this many piled up; 16 segments measured no slower
# to query than one.
MAX_FTS_SEGMENTS = 8
# A flat scan of 384-d vectors costs ~80 ms at 100k rows here: past ANN_MIN_ROWS the store builds an ANN index.
ANN_MIN_ROWS = 20_000
# IVF_HNSW_SQ (an HNSW graph over 8-bit scalar-quantised vectors in each IVF partition), every partition probed:
# measured at 100k clustered 384-d rows (bench/query_latency.py), ef 200 -> recall@10 0.971 against exact search
# at p95 3.8 ms, where IVF_FLAT needed p95 12-38 ms for 0.98-0.995 and IVF_PQ (48 sub-vectors, refine 10) stayed
# under 0.92. Every probed partition is one more graph search (~1.7 ms whatever its size, HNSW being
# logarithmic), so partitions are large: at 100k rows, 2 partitions gave recall 0.964 at p95 ~4 ms where 8 gave
# the same recall at p95 9-15 ms, and built no slower (25 s against 32 s).
ANN_ROWS_PER_PARTITION = 50_000
# Rows written after the vector index was built are flat-scanned on every query: 8k of them cost ~7 ms of a
# 9 ms dense search at 100k rows. Past this many they are indexed as a new index segment (~0.3-0.8 s). Each
# segment costs ~1.5 ms per query, so segments are merged by size tier (see vector_segments_to_merge): the
# ANN index keeps O(log n) segments instead of one per write (a 1M-row table written in 512-row batches had
# 635, and a dense query took 335 ms).
VECTOR_SEGMENT_ROWS = 2048
ANN_EF = 400
# Indexes built by earlier versions (IVF_FLAT, recorded without "kind"): probe a third of the partitions, at
# least 20 (recall@10 0.978-1.0 measured on clustered data).
ANN_PROBE_SHARE = 1 / 3
ANN_MIN_PROBES = 20
KEEP_VERSIONS = timedelta(hours=1)  # old table versions other readers may still hold


def sql_str(value: str) -> str:
    """A SQL string literal: single quotes doubled, so ids and doc paths can never break out of the predicate."""
    return "'" + value.replace("'", "''") + "'"


def _hit(row: dict[str, Any], score: float) -> SearchHit:
    return SearchHit(
        chunk_id=row["chunk_id"],
        doc_id=row["doc_id"],
        heading=row["heading"],
        text=row["text"],
        start=int(row["start"]),
        end=int(row["end"]),
        score=float(score),
        data_rev=row["data_rev"],
    )


def _meta(row: dict[str, Any]) -> RowMeta:
    return RowMeta(**{k: row[k] for k in META_COLUMNS})


def _rows(batch: Any) -> Iterator[IndexRow]:
    """IndexRows of an Arrow record batch holding the meta columns, text and vector."""
    if batch.num_rows == 0:
        return
    vectors = batch.column("vector").flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    vectors = vectors.reshape(batch.num_rows, -1)
    for i, row in enumerate(batch.drop_columns(["vector"]).to_pylist()):
        yield IndexRow(meta=_meta(row), text=row["text"], vector=vectors[i].copy())


class LanceDBStore:
    """IndexStore on a LanceDB directory. Cheap to open; several processes may use one directory in turn."""

    def __init__(self, path: Path | str) -> None:
        import lancedb

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        # Interval 0: every read checks for newer versions, so a table written by another process (a Prefect
        # task in another thread or worker) is seen at once instead of at this handle's open time.
        self._db = lancedb.connect(self.path, read_consistency_interval=timedelta(0))
        self._tables: dict[str, Any] = {}
        self._ann: dict[str, dict[str, Any]] = {}  # collection -> its ANN record (cached: read on every dense query)
        self._executor: ThreadPoolExecutor | None = None
        self._meta_cache: tuple[int, dict[str, str]] | None = None  # (meta table version, its rows)

    # -- collections -----------------------------------------------------------------------------------------
    def create_collection(self, name: str, dim: int) -> None:
        """Create an empty collection. One that exists is an error: a new build never writes into a collection
        someone else (the live alias, a concurrent rebuild) may be reading."""
        import pyarrow as pa
        from lancedb.index import FTS

        check_name("collection", name)
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        if name in self._aliases():
            raise IndexStoreError(f"{name!r} is already an alias; pick another collection name")
        if name in self.list_collections():
            raise IndexStoreError(f"collection {name!r} already exists in {self.path}; a build needs a new name")
        schema = pa.schema(
            [*(pa.field(c, pa.int64() if c in ("start", "end", "ordinal") else pa.string()) for c in META_COLUMNS),
             pa.field("text", pa.string()), pa.field("vector", pa.list_(pa.float32(), dim))]
        )
        try:  # exist_ok=False: a concurrent creator of the same name makes this fail instead of sharing the table
            table = self._db.create_table(name, schema=schema, exist_ok=False)
        except (ValueError, OSError) as exc:
            raise IndexStoreError(f"cannot create collection {name!r}: {exc}") from exc
        self._tables[name] = table
        table.create_index("text", config=FTS(), replace=True)

    def drop_collection(self, name: str) -> None:
        """Drop a collection (no-op if missing). Refused while an alias points at it."""
        check_name("collection", name)
        pointing = sorted(a for a, c in self._aliases().items() if c == name)
        if pointing:
            raise IndexStoreError(
                f"refusing to drop {name!r}: alias(es) {', '.join(pointing)} point at it. "
                "Move the alias to another collection first (set_alias)."
            )
        self._tables.pop(name, None)
        self._db.drop_table(name, ignore_missing=True)

    def list_collections(self) -> list[str]:
        names: list[str] = []
        token = None
        while True:
            page = self._db.list_tables(page_token=token)
            names.extend(page.tables)
            token = page.page_token
            if not token:
                break
        return sorted(n for n in names if n != META_TABLE)

    def count(self, collection: str) -> int:
        return int(self._table(collection).count_rows())

    # -- writes ----------------------------------------------------------------------------------------------
    def upsert(self, collection: str, rows: Sequence[IndexRow]) -> None:
        """Insert or replace rows by chunk_id (idempotent)."""
        if not rows:
            return
        table = self._table(collection)
        data = self._arrow_rows(rows, self._dim(table))
        table.merge_insert("chunk_id").when_matched_update_all().when_not_matched_insert_all().execute(data)
        self._maintain(table)

    def delete(self, collection: str, chunk_ids: Sequence[str]) -> int:
        """Delete rows by chunk_id; returns how many existed. Unknown ids are ignored (idempotent)."""
        table = self._table(collection)
        ids = sorted(set(chunk_ids))
        deleted = 0
        for i in range(0, len(ids), PREDICATE_BATCH):
            batch = ", ".join(sql_str(c) for c in ids[i : i + PREDICATE_BATCH])
            deleted += int(table.delete(f"chunk_id IN ({batch})").num_deleted_rows)
        if deleted:
            self._maintain(table)
        return deleted

    # -- reads -----------------------------------------------------------------------------------------------
    def fetch_meta(self, collection: str, doc_ids: Sequence[str] | None = None) -> dict[str, RowMeta]:
        """Metadata of every row (or of the given documents' rows), without reading vectors or texts."""
        table = self._table(collection)
        if doc_ids is None:
            predicates: list[str | None] = [None]
        else:
            docs = sorted(set(doc_ids))
            predicates = [
                "doc_id IN (" + ", ".join(sql_str(d) for d in docs[i : i + PREDICATE_BATCH]) + ")"
                for i in range(0, len(docs), PREDICATE_BATCH)
            ]
        out: dict[str, RowMeta] = {}
        for predicate in predicates:
            query = table.search().select(META_COLUMNS).limit(None)
            if predicate:
                query = query.where(predicate)
            for row in query.to_arrow().to_pylist():
                out[row["chunk_id"]] = _meta(row)
        return out

    def fetch_rows(self, collection: str, chunk_ids: Sequence[str]) -> dict[str, IndexRow]:
        """Rows by id (meta, text, vector), in `IN (...)` batches; ids that are not stored are absent."""
        table = self._table(collection)
        ids = sorted(set(chunk_ids))
        out: dict[str, IndexRow] = {}
        for i in range(0, len(ids), PREDICATE_BATCH):
            predicate = "chunk_id IN (" + ", ".join(sql_str(c) for c in ids[i : i + PREDICATE_BATCH]) + ")"
            query = table.search().where(predicate).select([*META_COLUMNS, "text", "vector"]).limit(None)
            for batch in query.to_arrow().to_batches():
                out.update((row.meta.chunk_id, row) for row in _rows(batch))
        return out

    def iter_rows(self, collection: str, batch_size: int = 1024) -> Iterator[IndexRow]:
        """Every row with text and vector, streamed in batches (order unspecified)."""
        query = self._table(collection).search().select([*META_COLUMNS, "text", "vector"]).limit(None)
        for batch in query.to_batches(batch_size):
            yield from _rows(batch)

    def search(
        self,
        collection: str,
        query_text: str,
        query_vector: QueryVector,
        top_k: int,
        alpha: float,
        mode: SearchMode = "hybrid",
    ) -> list[SearchHit]:
        """Dense (score = cosine similarity), full-text (score = BM25) or hybrid (relative score fusion)."""
        check_search_args(mode, alpha)
        if top_k <= 0:
            return []
        table = self._table(collection)
        text = (query_text or "").strip()
        if mode == "dense" or not text:  # nothing to match on: the vector still answers
            return self._dense(table, resolve_vector(query_vector), top_k)
        if mode == "fulltext":
            return self._fulltext(table, text, top_k)
        k = OVERFETCH * top_k
        # The two searches are independent and LanceDB releases the GIL: the full-text search runs in a thread
        # while this one computes the query vector (when given a function) and runs the dense search.
        fulltext = self._pool().submit(self._fulltext, table, text, k)
        dense = self._dense(table, resolve_vector(query_vector), k)
        return relative_score_fusion(dense, fulltext.result(), alpha, top_k)

    def _dense(self, table: Any, query_vector: np.ndarray, k: int) -> list[SearchHit]:
        vector = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self._dim(table):
            raise ValueError(f"query vector has dim {vector.shape[0]}, the collection holds {self._dim(table)}")
        query = table.search(vector, query_type="vector", vector_column_name="vector").distance_type("cosine")
        ann = self._ann_record(table)
        partitions = int(ann.get("partitions", 0))
        if ann.get("kind") == "ivf_hnsw_sq":
            query = query.nprobes(partitions).ef(max(ANN_EF, k))
        elif partitions:
            query = query.nprobes(min(partitions, max(ANN_MIN_PROBES, math.ceil(partitions * ANN_PROBE_SHARE))))
        rows = query.select([*HIT_COLUMNS, "_distance"]).limit(k).to_list()
        return [_hit(r, 1.0 - float(r["_distance"])) for r in rows]

    def _fulltext(self, table: Any, text: str, k: int) -> list[SearchHit]:
        from lancedb.query import MatchQuery

        # A MatchQuery takes the words as they are: quotes, AND/OR or ':' in a user's question are not syntax.
        query = table.search(MatchQuery(text, "text"), query_type="fts").select([*HIT_COLUMNS, "_score"])
        return [_hit(r, r["_score"]) for r in query.limit(k).to_list()]

    # -- aliases and state -----------------------------------------------------------------------------------
    def get_alias(self, alias: str) -> str | None:
        return self._meta_get(f"alias/{alias}")

    def set_alias(self, alias: str, collection: str) -> None:
        """Point `alias` at `collection` (create or move) in one atomic write."""
        check_name("alias", alias)
        if collection not in self.list_collections():
            raise IndexStoreError(f"cannot point alias {alias!r} at {collection!r}: no such collection")
        if alias in self.list_collections():
            raise IndexStoreError(f"alias {alias!r} would shadow the collection of that name; pick another alias")
        self._meta_put(f"alias/{alias}", collection)

    def load_state(self, alias: str) -> dict[str, Any] | None:
        return self._meta_get(f"state/{alias}")

    def save_state(self, alias: str, state: dict[str, Any]) -> None:
        check_name("alias", alias)
        self._meta_put(f"state/{alias}", dict(state))

    def close(self) -> None:
        self._tables.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> LanceDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------------------
    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lorag-fts")
        return self._executor

    def _table(self, name: str) -> Any:
        table = self._tables.get(name)
        if table is None:
            check_name("collection", name)  # also keeps the meta table out of reach
            try:
                table = self._db.open_table(name)
            except (ValueError, FileNotFoundError) as exc:
                raise IndexStoreError(
                    f"collection {name!r} does not exist in {self.path}: create it with create_collection "
                    f"(existing: {', '.join(self.list_collections()) or 'none'})"
                ) from exc
            self._tables[name] = table
        return table

    @staticmethod
    def _dim(table: Any) -> int:
        return int(table.schema.field("vector").type.list_size)

    @staticmethod
    def _arrow_rows(rows: Sequence[IndexRow], dim: int) -> Any:
        import pyarrow as pa

        ids = [r.meta.chunk_id for r in rows]
        if len(set(ids)) != len(ids):
            dup = next(c for c in ids if ids.count(c) > 1)
            raise ValueError(f"chunk_id {dup} appears twice in one upsert batch; the planner must dedupe")
        vectors = np.stack([np.asarray(r.vector, dtype=np.float32).reshape(-1) for r in rows])
        if vectors.shape[1] != dim:
            raise ValueError(f"vectors have dim {vectors.shape[1]}, the collection holds {dim}")
        if not np.isfinite(vectors).all():
            raise ValueError("a vector holds NaN or inf; re-embed the affected chunks")
        cols: dict[str, Any] = {c: [getattr(r.meta, c) for r in rows] for c in META_COLUMNS}
        cols["text"] = [r.text for r in rows]
        cols["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), dim)
        return pa.table(cols)

    @staticmethod
    def _index_names(table: Any) -> tuple[str | None, str | None]:
        fts = vec = None
        for index in table.list_indices():
            if index.index_type == "FTS":
                fts = index.name
            elif "vector" in index.columns:
                vec = index.name
        return fts, vec

    def _ann_record(self, table: Any) -> dict[str, Any]:
        """The collection's ANN index as recorded when it was built ({} when none): kind and partitions.

        Recorded rather than derived from the row count: the index is built at one size and the table keeps
        growing, so a count-based guess would misstate the partitions.
        """
        name = table.name
        if name not in self._ann:
            self._ann[name] = self._meta_get(f"ann/{name}") or {}
        return self._ann[name]

    def _maintain(self, table: Any) -> None:
        """Index what the write added at a cost that grows with the write, not the table: compact small
        fragments, put new rows into new index segments, merge segments before they pile up, and build the ANN
        index when the table first gets large (rebuilding it each time the table doubles)."""
        from lancedb.index import FTS, IvfHnswSq

        fts, vec = self._index_names(table)
        stats = table.stats()  # compaction below changes fragments, not the row count
        if stats["fragment_stats"]["num_fragments"] >= MAX_FRAGMENTS:
            dataset = table.to_lance()
            dataset.optimize.compact_files()
            dataset.cleanup_old_versions(older_than=KEEP_VERSIONS)
        if fts is None:
            table.create_index("text", config=FTS(), replace=True)
        else:
            fts_stats = table.index_stats(fts)
            if fts_stats.num_unindexed_rows or fts_stats.num_indices >= MAX_FTS_SEGMENTS:
                # 0: the new rows become a new segment; n: they and the newest n segments become one
                merge = fts_stats.num_indices if fts_stats.num_indices >= MAX_FTS_SEGMENTS else 0
                table.to_lance().optimize.optimize_indices(index_names=[fts], num_indices_to_merge=merge)
        rows = int(stats["num_rows"])
        built = self._meta_get(f"ann/{table.name}") if vec else None
        # (Re)build when the table first gets large, and again each time it doubles: IVF centroids trained on
        # a small table partition a large one badly.
        if rows >= ANN_MIN_ROWS and (vec is None or built is None or rows >= 2 * int(built["rows"])):
            partitions = max(1, rows // ANN_ROWS_PER_PARTITION)
            config = IvfHnswSq(distance_type="cosine", num_partitions=partitions)
            table.create_index("vector", config=config, replace=True)
            self._meta_put(f"ann/{table.name}", {"rows": rows, "partitions": partitions, "kind": "ivf_hnsw_sq"})
            self._ann.pop(table.name, None)
        elif vec is not None and table.index_stats(vec).num_unindexed_rows >= VECTOR_SEGMENT_ROWS:
            dataset = table.to_lance()
            vec_stats = dataset.stats.index_stats(vec)
            merge = vector_segments_to_merge(_segment_rows(vec_stats)[1:], int(vec_stats["num_unindexed_rows"]))
            dataset.optimize.optimize_indices(index_names=[vec], num_indices_to_merge=merge)

    def _meta_table(self, create: bool) -> Any | None:
        import pyarrow as pa

        if META_TABLE in self._tables:
            return self._tables[META_TABLE]
        try:
            table = self._db.open_table(META_TABLE)
        except (ValueError, FileNotFoundError):
            if not create:
                return None
            schema = pa.schema([pa.field("key", pa.string()), pa.field("value", pa.string())])
            table = self._db.create_table(META_TABLE, schema=schema, exist_ok=True)
        self._tables[META_TABLE] = table
        return table

    def _meta_rows(self) -> dict[str, str]:
        """Every meta row (key -> JSON text), read again only when the meta table has a new version.

        A search reads the alias on every query; between publishes that was a table scan (~3 ms) for an answer
        that had not changed. Checking the version costs ~0.1 ms and still sees another process's publish at
        once (read_consistency_interval 0). The table is small: aliases, states and index records.
        """
        table = self._meta_table(create=False)
        if table is None:
            return {}
        version = table.version
        if self._meta_cache is None or self._meta_cache[0] != version:
            rows = table.search().select(["key", "value"]).limit(None).to_arrow().to_pylist()
            self._meta_cache = (version, {r["key"]: r["value"] for r in rows})
        return self._meta_cache[1]

    def _meta_get(self, key: str) -> Any:
        raw = self._meta_rows().get(key)
        return json.loads(raw) if raw is not None else None

    def _meta_put(self, key: str, value: Any) -> None:
        try:
            encoded = json.dumps(value, sort_keys=True)
        except TypeError as exc:
            raise ValueError(f"{key}: state must be JSON-serialisable (str, numbers, lists, dicts): {exc}") from exc
        table = self._meta_table(create=True)
        row = [{"key": key, "value": encoded}]
        table.merge_insert("key").when_matched_update_all().when_not_matched_insert_all().execute(row)

    def _aliases(self) -> dict[str, str]:
        return {k.removeprefix("alias/"): json.loads(v) for k, v in self._meta_rows().items() if k.startswith("alias/")}


def vector_segments_to_merge(segment_rows: Sequence[int], new_rows: int) -> int:
    """How many of the newest vector index segments (`segment_rows`, oldest first, the built index left out)
    to merge with `new_rows` unindexed rows: each next-newest segment while it is no larger than what is being
    merged. Like a binary counter, this keeps about log2(rows since the build / VECTOR_SEGMENT_ROWS) segments
    and indexes each row about that many times, where merging every segment each time would re-index
    everything written since the build on every write."""
    merged, count = new_rows, 0
    for size in reversed(segment_rows):
        if size > merged:
            break
        merged += size
        count += 1
    return count


def _segment_rows(index_stats: dict[str, Any]) -> list[int]:
    """Rows in each segment of a vector index, oldest first (the sum of its IVF partition sizes)."""
    return [sum(int(p["size"]) for p in segment.get("partitions", [])) for segment in index_stats["indices"]]
