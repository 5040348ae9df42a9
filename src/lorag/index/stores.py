"""Open the configured index store: embedded LanceDB (default) or Weaviate."""

from __future__ import annotations

import os
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

        return LanceDBStore(params.path(params.index.lancedb_dir))
    if backend == "weaviate":
        from lorag.index.weaviate_store import WeaviateStore, connect_weaviate

        wp = params.index.weaviate
        if not wp.embedded and not os.environ.get(wp.url_env, "").strip():
            raise IndexStoreError(
                f"index.backend is weaviate but {wp.url_env} is not set. Export {wp.url_env}=http://localhost:8080 "
                f"(docker compose in infra/) or your Weaviate Cloud URL (with {wp.api_key_env}), set "
                "index.weaviate.embedded=true, or use index.backend=lancedb."
            )
        return WeaviateStore(connect_weaviate(wp))
    raise IndexStoreError(f"unknown index.backend {backend!r}: use lancedb or weaviate")


def published_state(params: Params) -> dict[str, Any] | None:
    """The state record of the index published as `index.name`, or None when nothing is published yet.

    Read-only: a project whose embedded index folder does not exist has nothing published, and opening the store
    there would create the folder.
    """
    if params.index.backend == "lancedb" and not params.path(params.index.lancedb_dir).is_dir():
        return None
    store = open_store(params)
    try:
        return store.load_state(params.index.name)
    finally:
        store.close()
