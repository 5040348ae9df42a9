"""The query log: one JSON line per search, appended by the query path when `monitoring.query_log` is on.

A line holds when, how (mode, k), the query text, how many hits came back, the best hit's id and score: what
drift monitoring needs and nothing else (no params, no environment, no credentials). The text is kept because
query drift is measured on embeddings, and re-embedding the text keeps the log valid across embedder changes.
Turn it off with `--set monitoring.query_log=false`; delete the file to forget it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.index.protocol import SearchHit

_LOCK = threading.Lock()
# Searches that are not user traffic (an evaluation's fixed question set, a latency probe) run inside
# `suppressed()`: logged, they would look like a burst of new queries to the drift test.
_SUPPRESSED: ContextVar[bool] = ContextVar("lorag_query_log_suppressed", default=False)


@contextmanager
def suppressed() -> Iterator[None]:
    """Searches inside this block are not logged (this thread / task only)."""
    token = _SUPPRESSED.set(True)
    try:
        yield
    finally:
        _SUPPRESSED.reset(token)


@dataclass(frozen=True)
class LoggedQuery:
    ts: float
    mode: str
    query: str
    hits: int
    top_chunk: str | None
    top_score: float | None
    collection: str | None


def append(params: Params, query: str, mode: str, hits: Sequence[SearchHit], collection: str | None = None) -> None:
    """Append one search to the log (a no-op when monitoring.query_log is off).

    One `write` of a single line on a file opened with O_APPEND: concurrent processes never interleave lines.
    """
    if not params.monitoring.query_log or _SUPPRESSED.get():
        return
    top = hits[0] if hits else None
    line = {"ts": round(time.time(), 3), "mode": mode, "query": query, "hits": len(hits),
            "top_chunk": top.chunk_id if top else None, "top_score": float(top.score) if top else None,
            "collection": collection}
    path = params.monitoring.query_log_path
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
    with _LOCK:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def read(path: Path) -> list[LoggedQuery]:
    """Every logged query, oldest first; a missing log is empty. A torn last line (a crash mid-write) is
    ignored: it can only be the newest line, and the next append starts a new one."""
    if not Path(path).is_file():
        return []
    out: list[LoggedQuery] = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row: dict[str, Any] = json.loads(raw)
        except ValueError:
            continue
        out.append(LoggedQuery(float(row["ts"]), str(row.get("mode", "")), str(row.get("query", "")),
                               int(row.get("hits", 0)), row.get("top_chunk"), row.get("top_score"),
                               row.get("collection")))
    return sorted(out, key=lambda q: q.ts)
