"""Open the configured index store: embedded LanceDB (default) or Weaviate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lorag.index.protocol import IndexStore, IndexStoreError

if TYPE_CHECKING:
    from lorag.config import Params


def open_store(params: Params) -> IndexStore:
    """The store `params.index.backend` names. Cheap for LanceDB (a directory); Weaviate opens a connection.

    Close it with `store.close()` when done.
    """
    backend = params.index.backend
    if backend == "lancedb":
        from lorag.index.lancedb_store import LanceDBStore

        return LanceDBStore(params.index.lancedb_dir)
    if backend == "weaviate":
        from lorag.index.weaviate_store import open_weaviate_store

        # Config problems and an unreachable server both come out as one-line IndexStoreErrors.
        return open_weaviate_store(params.index.weaviate)
    raise IndexStoreError(f"unknown index.backend {backend!r}: use lancedb or weaviate")


def published_state(params: Params) -> dict[str, Any] | None:
    """The state record of the index published as `index.name`, or None when nothing is published yet.

    Read-only: a project whose embedded index folder does not exist has nothing published, and opening the store
    there would create the folder.
    """
    if params.index.backend == "lancedb" and not params.index.lancedb_dir.is_dir():
        return None
    store = open_store(params)
    try:
        return store.load_state(params.index.name)
    finally:
        store.close()
