"""Pure planning: what changed between two manifests, and which index writes bring the index up to date.

No I/O here, so the rules that decide what gets embedded, written and deleted are unit-testable on their own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from lorag.corpus.model import Chunk
from lorag.index.protocol import RowMeta


@dataclass(frozen=True)
class ChangeSet:
    """Document-level changes between the last indexed manifest and the new snapshot (path -> md5)."""

    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    renamed: Mapping[str, str] = field(default_factory=dict)  # new path -> old path, same content
    unchanged: tuple[str, ...] = ()

    @property
    def to_read(self) -> tuple[str, ...]:
        """Documents whose text is needed: everything new or changed (renames are cheap: cached vectors)."""
        return tuple(sorted({*self.added, *self.modified, *self.renamed}))

    @property
    def touched(self) -> tuple[str, ...]:
        """Documents whose rows may change in the index, including the old side of renames."""
        return tuple(sorted({*self.to_read, *self.deleted, *self.renamed.values()}))

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "modified": len(self.modified),
            "renamed": len(self.renamed),
            "deleted": len(self.deleted),
            "unchanged": len(self.unchanged),
        }


def split_documents(manifest: Mapping[str, str], suffixes: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """(documents, others): the manifest's paths whose suffix is a document type, and the sorted rest.

    DVC versions the whole docs folder (images and site configuration included), but only documents are
    compared, read and indexed; the others are counted and listed, never read.
    """
    wanted = {s.lower() for s in suffixes}
    documents = {p: m for p, m in manifest.items() if PurePosixPath(p).suffix.lower() in wanted}
    return documents, sorted(p for p in manifest if p not in documents)


def diff_manifests(old: Mapping[str, str], new: Mapping[str, str], dirty: Iterable[str] = ()) -> ChangeSet:
    """Classify every path. A path missing from `old` whose md5 vanished from another path is a rename.

    `dirty` lists documents an interrupted run was writing: they are re-planned even if their hash matches,
    because the index may hold a half-applied version of them.
    """
    dirty_set = set(dirty)
    gone = sorted(p for p in old if p not in new)
    fresh = sorted(p for p in new if p not in old)
    by_md5: dict[str, list[str]] = defaultdict(list)
    for path in gone:
        by_md5[old[path]].append(path)
    renamed: dict[str, str] = {}
    added: list[str] = []
    for path in fresh:
        candidates = by_md5.get(new[path])
        if candidates:
            renamed[path] = candidates.pop(0)
        else:
            added.append(path)
    rename_sources = set(renamed.values())
    deleted = [p for p in gone if p not in rename_sources]
    both = sorted(p for p in new if p in old)
    modified = [p for p in both if old[p] != new[p] or p in dirty_set]
    unchanged = [p for p in both if old[p] == new[p] and p not in dirty_set]
    # A dirty document that is gone from disk must still have its rows removed.
    deleted += sorted(p for p in dirty_set if p not in new and p not in old)
    return ChangeSet(tuple(added), tuple(modified), tuple(sorted(set(deleted))), renamed, tuple(unchanged))


@dataclass(frozen=True)
class WritePlan:
    """Index writes for one run: upserts first, deletes last (a crash never loses published content)."""

    upserts: tuple[Chunk, ...]
    deletes: tuple[str, ...]
    unchanged_chunks: int  # rows of the collection this plan leaves exactly as they are (touched docs or not)
    expected_count: int  # rows in the collection once the plan is applied

    def counts(self) -> dict[str, int]:
        return {
            "chunks_upserted": len(self.upserts),
            "chunks_deleted": len(self.deletes),
            "chunks_unchanged": self.unchanged_chunks,
            "chunks_expected": self.expected_count,
        }


def plan_writes(
    new_chunks: Mapping[str, list[Chunk]],
    existing: Mapping[str, RowMeta],
    current_count: int,
) -> WritePlan:
    """Compare the wanted chunks of the touched documents with the rows the index holds for them.

    `new_chunks` maps each touched document to its chunks (empty list: the document is gone);
    `existing` holds the index rows of those same documents. A chunk whose id and metadata already match is
    left alone; one whose metadata moved (offsets after an edit above it, a new path) is rewritten, reusing
    its cached vector. Every row the plan neither rewrites nor deletes is unchanged, including all the rows of
    the documents it does not touch: a no-op run reports the whole collection as unchanged, not 0.
    """
    wanted: dict[str, Chunk] = {c.chunk_id: c for chunks in new_chunks.values() for c in chunks}
    upserts = tuple(c for cid, c in wanted.items() if not _same(existing.get(cid), c))
    deletes = tuple(sorted(cid for cid in existing if cid not in wanted))
    created = sum(1 for cid in wanted if cid not in existing)
    expected = current_count + created - len(deletes)
    return WritePlan(
        upserts=upserts,
        deletes=deletes,
        unchanged_chunks=expected - len(upserts),  # every upserted row is in the result, rewritten
        expected_count=expected,
    )


def _same(row: RowMeta | None, chunk: Chunk) -> bool:
    return row is not None and (
        row.doc_id,
        row.text_hash,
        row.heading,
        row.start,
        row.end,
        row.ordinal,
    ) == (chunk.doc_id, chunk.text_hash, chunk.heading, chunk.start, chunk.end, chunk.ordinal)


def duplicate_paths(manifest: Mapping[str, str], indexed: Iterable[str] = ()) -> dict[str, str]:
    """Paths whose bytes equal another path's: duplicate -> the path kept.

    A path already in the index is kept over a newcomer (a copy never evicts the page people already find);
    among newcomers the first in sorted order wins, so the choice is the same on every run.
    """
    already = set(indexed)
    first: dict[str, str] = {}
    dupes: dict[str, str] = {}
    for path in sorted(manifest, key=lambda p: (p not in already, p)):
        kept = first.setdefault(manifest[path], path)
        if kept != path:
            dupes[path] = kept
    return dupes
