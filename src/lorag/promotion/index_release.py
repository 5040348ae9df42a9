"""The index half of a release: frozen at promotion, restored by `lorag rollback --index`.

The released unit is the adapter and the index it answers from. The published collection keeps changing after a
release (incremental re-indexes write into it), and LanceDB's old table versions are cleaned up after an hour, so
a promotion copies the published collection into a frozen one, `<alias>_release_v<N>`, that nothing writes to.
A rollback with --index copies the frozen rows into a new collection, checks it, and only then moves the alias and
the published state: search keeps answering from the live collection until that one atomic switch, and the frozen
copy stays untouched for the next rollback. The same protocol calls work for LanceDB and Weaviate.

Frozen names never match the names `_prune` may drop, and `released_collections` also protects every collection
a release recorded as its source from `index.keep_last`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.index.protocol import IndexStore


class IndexReleaseError(RuntimeError):
    """The index of a release cannot be frozen or restored; the message says why and what to do."""


def releases_key(alias: str) -> str:
    """The state record (beside the alias's own) listing the collections releases reference."""
    return f"{alias}_releases"


def released_collections(store: IndexStore, alias: str) -> set[str]:
    record = store.load_state(releases_key(alias)) or {}
    return set(record.get("collections", {}))


def _copy(store: IndexStore, source: str, target: str, batch: int) -> int:
    rows, copied, created = [], 0, False
    for row in store.iter_rows(source):
        if not created:
            store.create_collection(target, int(row.vector.shape[0]))
            created = True
        rows.append(row)
        if len(rows) >= batch:
            store.upsert(target, rows)
            copied, rows = copied + len(rows), []
    if not created:
        raise IndexReleaseError(f"collection {source} is empty: re-index (`lorag reindex`) before releasing it")
    if rows:
        store.upsert(target, rows)
        copied += len(rows)
    if store.count(target) != copied:
        raise IndexReleaseError(f"copy of {source} into {target} holds {store.count(target)} rows, not {copied}: "
                                "retry; the published index was not touched")
    return copied


def _table_version(params: Params, collection: str) -> int | None:
    """LanceDB's version of the frozen table (None for Weaviate, which has no table versions)."""
    if params.index.backend != "lancedb":
        return None
    import lancedb

    return int(lancedb.connect(params.index.lancedb_dir).open_table(collection).version)


def freeze_index(params: Params, version: str) -> dict[str, Any]:
    """Copy the published index into the release's frozen collection (once: a retry reuses it); returns the
    index part of the release manifest. Raises IndexReleaseError when nothing is published."""
    from lorag.index.stores import open_store

    alias = params.index.name
    frozen = f"{alias}_release_v{version}".lower()
    with open_store(params) as store:
        state = store.load_state(alias)
        if state is None:
            raise IndexReleaseError(f"no index is published as {alias!r}: run `lorag reindex` first (a release "
                                    "ties the adapter to the index it answers from)")
        if frozen not in store.list_collections():
            try:
                _copy(store, state["collection"], frozen, params.index.write_batch)
            except Exception:
                store.drop_collection(frozen)  # half a copy is no release: the retry starts clean
                raise
        record = store.load_state(releases_key(alias)) or {"collections": {}}
        record["collections"].update({state["collection"]: version, frozen: version})
        store.save_state(releases_key(alias), record)
        chunks = store.count(frozen)
    return {"index_name": alias, "index_backend": params.index.backend, "index_collection": frozen,
            "index_source_collection": state["collection"], "index_table_version": _table_version(params, frozen),
            "index_chunks": chunks, "docs_data_rev": state.get("data_rev"), "embedder": state.get("embedder"),
            "index_state": state}


def restore_index(params: Params, index: dict[str, Any]) -> dict[str, Any]:
    """Publish a copy of a release's frozen collection under the alias; returns what is served now."""
    from lorag.index.stores import open_store
    from lorag.reindex.prepare import _new_collection_name

    alias, frozen = params.index.name, index["index_collection"]
    with open_store(params) as store:
        live = store.load_state(alias)
        if frozen not in store.list_collections():
            raise IndexReleaseError(f"the release's frozen collection {frozen} is gone: the index cannot be "
                                    "restored; roll back without --index and re-index")
        if live is not None and live.get("embedder") != index["embedder"]:
            raise IndexReleaseError("the release's index was embedded by another model than the published one; "
                                    "restoring it would mix vectors of two embedders: re-index instead")
        state = dict(index["index_state"])
        target = _new_collection_name(alias, str(state.get("data_rev") or "restored"), str(state.get("chunking")))
        copied = _copy(store, frozen, target, params.index.write_batch)
        history = list((live or {}).get("history") or []) + [target]
        state.update(collection=target, chunk_count=copied, history=history[-params.index.keep_last:],
                     pending=None, updated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        store.set_alias(alias, target)  # the one switch: readers see the old or the restored rows, never none
        store.save_state(alias, state)
    return {"collection": target, "from_release_collection": frozen, "chunks": copied,
            "docs_data_rev": state.get("data_rev")}
