"""A content-addressed embedding cache: (embedder fingerprint, text hash) -> float32 vector, in one SQLite file.

Why SQLite: one file, transactions (a process killed mid-write leaves the last committed state), WAL so a
reader never blocks on a writer, and safe use by several processes one after the other or at once (writers
wait on `busy_timeout` rather than failing). Keys carry the fingerprint, so vectors of two embedders never mix,
and a text edited back to an earlier version finds its old vector again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    fingerprint TEXT NOT NULL,
    text_hash   TEXT NOT NULL,
    dim         INTEGER NOT NULL,
    vector      BLOB NOT NULL,
    PRIMARY KEY (fingerprint, text_hash)
) WITHOUT ROWID
"""
# SQLite's bound-parameter limit is 32766 on current builds but 999 on old ones; stay under both.
_IN_CHUNK = 900
_BUSY_TIMEOUT_MS = 60_000


class EmbeddingCacheError(RuntimeError):
    """The cache file holds something it should not (a wrong-sized vector). The message says how to fix it."""


@dataclass(frozen=True)
class CacheStats:
    rows: int
    by_fingerprint: dict[str, int]  # fingerprint -> rows
    file_bytes: int  # main database file plus its WAL


class EmbeddingCache:
    """Vectors keyed by (fingerprint, text hash). Each call opens its own connection: safe across threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            # WAL is a property of the file: set once, every later connection uses it.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            # NORMAL under WAL: a killed process loses nothing committed; only an OS crash may drop the last
            # transactions, which for a cache costs a recompute, never a wrong vector.
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        finally:
            conn.close()

    def get_many(self, fingerprint: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """The cached vectors among `hashes` for this embedder; misses are simply absent."""
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        with self._connect() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                part = wanted[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(part))
                rows = conn.execute(
                    f"SELECT text_hash, dim, vector FROM embeddings WHERE fingerprint = ? AND text_hash IN ({marks})",
                    [fingerprint, *part],
                )
                for text_hash, dim, blob in rows:
                    found[text_hash] = _decode(blob, dim, fingerprint, text_hash, self.path)
        return found

    def put_many(self, fingerprint: str, vectors: Mapping[str, np.ndarray]) -> int:
        """Store vectors in one transaction (all or nothing). Returns how many were written."""
        if not vectors:
            return 0
        rows = [(fingerprint, h, *_encode(v, h)) for h, v in vectors.items()]
        dims = {r[2] for r in rows}
        if len(dims) != 1:
            raise ValueError(f"put_many got vectors of several dims {sorted(dims)}: one embedder has one dim.")
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._check_dim(conn, fingerprint, dims.pop())
                conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return len(rows)

    def _check_dim(self, conn: sqlite3.Connection, fingerprint: str, dim: int) -> None:
        row = conn.execute("SELECT dim FROM embeddings WHERE fingerprint = ? LIMIT 1", [fingerprint]).fetchone()
        if row is not None and row[0] != dim:
            raise EmbeddingCacheError(
                f"{self.path}: embedder {fingerprint[:12]} has {row[0]}-dim vectors cached, got {dim}. The same "
                f"fingerprint cannot change dim: delete the cache file to start over."
            )

    def stats(self) -> CacheStats:
        """Row counts per embedder and the size on disk."""
        with self._connect() as conn:
            counts = dict(conn.execute("SELECT fingerprint, COUNT(*) FROM embeddings GROUP BY fingerprint"))
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return CacheStats(rows=sum(counts.values()), by_fingerprint=counts, file_bytes=size)


def _encode(vector: np.ndarray, text_hash: str) -> tuple[int, bytes]:
    arr = np.asarray(vector)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"vector for {text_hash[:12]} has shape {arr.shape}; expected one non-empty row (dim,).")
    return arr.size, np.ascontiguousarray(arr, dtype="<f4").tobytes()


def _decode(blob: bytes, dim: int, fingerprint: str, text_hash: str, path: Path) -> np.ndarray:
    if len(blob) != 4 * dim:
        raise EmbeddingCacheError(
            f"{path}: vector {fingerprint[:12]}/{text_hash[:12]} has {len(blob)} bytes, expected {4 * dim} "
            f"(float32 x {dim}). The file is damaged: delete it and re-run (vectors are recomputed)."
        )
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)  # a writable copy, native byte order
