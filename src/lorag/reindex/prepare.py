"""Snapshot and plan: everything a re-index decides before it writes anything.

A run reads only the documents DVC's manifest says are new or changed, validates them, chunks the good ones
and compares their chunks with the rows the index holds for those documents. Nothing here writes to the index.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lorag.corpus.model import Chunk, Rejected
from lorag.index.planner import ChangeSet, WritePlan, diff_manifests, duplicate_paths, plan_writes
from lorag.index.state import IndexState

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.embedding.embedder import Embedder
    from lorag.index.protocol import IndexStore
    from lorag.validation.documents import ValidationReport
    from lorag.versioning.dvc_repo import Snapshot


class DeletionGuardTripped(RuntimeError):
    """A run would delete more of the index than `index.max_delete_ratio` allows."""


@dataclass
class Prepared:
    """The decided plan of one re-index run, handed from step to step."""

    mode: Literal["full", "incremental"]
    reason: str
    alias: str
    collection: str  # where the writes go: the live collection, or a new one for a full build
    snapshot: Snapshot
    changes: ChangeSet
    report: ValidationReport
    plan: WritePlan
    manifest: dict[str, str]  # what the index will reflect once published
    embedder: str
    chunking: str
    previous: IndexState | None
    touched: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "reason": self.reason,
            "collection": self.collection,
            "data_rev": self.snapshot.data_rev,
            "git_rev": self.snapshot.git_rev,
            "documents": {**self.changes.counts(), "quarantined": len(self.report.failures)},
            "chunks": self.plan.counts(),
            "quarantined": [{"doc_id": f.doc_id, "rule": f.rule, "detail": f.detail} for f in self.report.failures],
        }


def take_snapshot(params: Params, dry_run: bool = False) -> Snapshot:
    """Version the docs folder with DVC (add, commit, push), or just hash it for a dry run / no versioning."""
    from lorag.versioning.dvc_repo import Snapshot, hash_manifest, snapshot_docs

    docs = params.path(params.corpus.docs_dir)
    if not docs.is_dir():
        raise FileNotFoundError(f"corpus.docs_dir {docs} does not exist: create it or point corpus.docs_dir at your documents")
    if params.versioning.enabled and not dry_run:
        return snapshot_docs(params)
    manifest = hash_manifest(docs, params.corpus.suffixes)
    rev = hashlib.md5(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    return Snapshot(data_rev=rev, git_rev=None, manifest=manifest, pushed=False)


def chunking_fingerprint(params: Params, embedder: Embedder) -> str:
    """Chunks depend on the chunking knobs and the tokenizer: a change in either means a full rebuild."""
    blob = json.dumps([params.chunking.model_dump(), embedder.fingerprint], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prepare(
    params: Params, snapshot: Snapshot, store: IndexStore, embedder: Embedder, full: bool = False
) -> Prepared:
    """Decide the mode, read and validate what changed, chunk it, and plan the index writes."""
    started = time.perf_counter()
    alias = params.index.name
    previous = _load_state(store, alias)
    chunking = chunking_fingerprint(params, embedder)
    mode, reason = _choose_mode(previous, full, embedder.fingerprint, chunking, store)
    incremental = mode == "incremental" and previous is not None
    old_manifest = previous.manifest if incremental else {}
    dirty = (previous.pending or []) if incremental else []
    changes = diff_manifests(old_manifest, snapshot.manifest, dirty)

    report, good = _read_and_validate(params, snapshot, changes, old_manifest)
    chunks_by_doc = _chunk(params, embedder, good, changes)
    collection = previous.collection if incremental else _new_collection_name(alias, snapshot.data_rev, chunking)
    existing = store.fetch_meta(collection, doc_ids=list(chunks_by_doc)) if incremental else {}
    current = store.count(collection) if incremental else 0
    plan = plan_writes(chunks_by_doc, existing, current)
    _guard_deletions(params, plan, current, incremental)

    failed = {f.doc_id for f in report.failures}
    manifest = {p: m for p, m in old_manifest.items() if p in snapshot.manifest or p not in chunks_by_doc}
    for doc_id in chunks_by_doc:
        manifest.pop(doc_id, None)
        if doc_id in snapshot.manifest and doc_id not in failed:
            manifest[doc_id] = snapshot.manifest[doc_id]
    return Prepared(
        mode=mode,
        reason=reason,
        alias=alias,
        collection=collection,
        snapshot=snapshot,
        changes=changes,
        report=report,
        plan=plan,
        manifest=manifest,
        embedder=embedder.fingerprint,
        chunking=chunking,
        previous=previous,
        touched=tuple(sorted(chunks_by_doc)),
        seconds={"prepare": time.perf_counter() - started},
    )


def _load_state(store: IndexStore, alias: str) -> IndexState | None:
    raw = store.load_state(alias)
    return IndexState.from_dict(raw) if raw else None


def _choose_mode(
    previous: IndexState | None, full: bool, embedder: str, chunking: str, store: IndexStore
) -> tuple[Literal["full", "incremental"], str]:
    if full:
        return "full", "requested with --full"
    if previous is None:
        return "full", "no published index yet"
    if previous.collection not in store.list_collections():
        return "full", f"published collection {previous.collection} is missing"
    if previous.embedder != embedder:
        return "full", "the embedding model changed (vectors of two models never share an index)"
    if previous.chunking != chunking:
        return "full", "the chunking parameters or tokenizer changed"
    return "incremental", f"against published revision {previous.data_rev[:12]}"


def _read_and_validate(
    params: Params, snapshot: Snapshot, changes: ChangeSet, indexed: dict[str, str]
) -> tuple[ValidationReport, list]:
    """Read the new and changed documents; run the Great Expectations suite over them.

    Files that never reach the manifest (symlinks leaving the folder, which the snapshot must not follow) are
    found by a directory walk, so they are reported on every run instead of vanishing silently.
    """
    from lorag.corpus.reader import list_files, read_documents
    from lorag.validation.documents import validate_documents

    docs_root = params.path(params.corpus.docs_dir)
    dupes = duplicate_paths(snapshot.manifest, indexed)
    wanted = [p for p in changes.to_read if p not in dupes]
    docs, rejected = read_documents(docs_root, wanted, params.corpus.max_file_bytes)
    _, listed = list_files(docs_root, params.corpus.suffixes)
    seen = {*wanted, *snapshot.manifest}
    rejected += [r for r in listed if r.doc_id not in seen]
    rejected += [
        Rejected(doc_id=p, rule="duplicate_content", detail=f"same bytes as {dupes[p]}, which is indexed")
        for p in changes.to_read
        if p in dupes
    ]
    kinds = ("markdown", "text", "rst", "html")
    report = validate_documents(docs, rejected, params.validation, kinds, corpus_size=len(snapshot.manifest))
    passed = set(report.passed)
    return report, [d for d in docs if d.doc_id in passed]


def _chunk(params: Params, embedder: Embedder, good: list, changes: ChangeSet) -> dict[str, list[Chunk]]:
    """Chunks of every touched document: good ones chunked, gone ones empty; failed ones left out entirely so
    their last published version stays in the index."""
    from lorag.corpus.chunker import chunk_document

    by_doc: dict[str, list[Chunk]] = {p: [] for p in (*changes.deleted, *changes.renamed.values())}
    for doc in good:
        by_doc[doc.doc_id] = chunk_document(
            doc, embedder.tokenizer, params.chunking.max_tokens, params.chunking.overlap_tokens
        )
    return by_doc


def _guard_deletions(params: Params, plan: WritePlan, current: int, incremental: bool) -> None:
    if not incremental or current == 0:
        return
    share = len(plan.deletes) / current
    if share > params.index.max_delete_ratio:
        raise DeletionGuardTripped(
            f"this run would delete {len(plan.deletes)} of {current} chunks ({share:.0%}), more than "
            f"index.max_delete_ratio={params.index.max_delete_ratio:.0%}. Nothing was written. If the deletions are "
            f"intended, re-run with --set index.max_delete_ratio=1.0 (or --full to rebuild)."
        )


def _new_collection_name(alias: str, data_rev: str, chunking: str) -> str:
    """Named from the data revision and the embedder/chunking fingerprint (readable), the time (sortable) and a
    random suffix: unique by construction, so two rebuilds in the same second never share a collection, and
    `create_collection` refuses a name that exists anyway."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{alias}_{data_rev[:8]}_{chunking[:8]}_{stamp}_{uuid.uuid4().hex[:8]}".lower()
