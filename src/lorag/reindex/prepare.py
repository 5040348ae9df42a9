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
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from lorag.corpus.model import Chunk, Rejected
from lorag.index.planner import ChangeSet, WritePlan, diff_manifests, duplicate_paths, plan_writes, split_documents
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
    skipped: tuple[str, ...] = ()  # files that are not documents (corpus.other_files: skip): counted, never read
    still_quarantined: tuple[str, ...] = ()  # failed paths the last quarantine report already held, same content
    seconds: dict[str, float] = field(default_factory=dict)
    deletion_guard: str | None = None  # why the plan deletes more than index.max_delete_ratio allows, if it does

    def check_deletions(self, accept_deletions: bool) -> None:
        """Stop a plan that trips the deletion guard, before anything is versioned or written."""
        if self.deletion_guard and not accept_deletions:
            raise DeletionGuardTripped(self.deletion_guard)

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "reason": self.reason,
            "collection": self.collection,
            "data_rev": self.snapshot.data_rev,
            "git_rev": self.snapshot.git_rev,
            "deletion_guard": self.deletion_guard,
            "documents": _document_counts(self),
            "chunks": self.plan.counts(),
            "quarantined": _quarantined_files(self),
            "skipped": _skipped_files(self.skipped),
            "notes": [{"doc_id": n.doc_id, "rule": n.rule, "detail": n.detail} for n in self.report.notes],
        }


def scan_documents(params: Params, dry_run: bool = False) -> Snapshot:
    """The documents' manifest and the data revision DVC will record for them, without writing anything."""
    from lorag.versioning.dvc_repo import scan_docs

    return scan_docs(params, write_ignores=params.versioning.enabled and not dry_run)


def commit_snapshot(params: Params, prepared: Prepared) -> Prepared:
    """Version the documents the plan was made from (DVC add, push, git commit), once the plan is accepted.

    Refuses when the folder changed since it was scanned: the plan would describe other documents than the
    revision recorded for them.
    """
    from dataclasses import replace

    from lorag.versioning.dvc_repo import snapshot_docs, unchanged_snapshot

    if not params.versioning.enabled:
        return prepared
    snapshot = unchanged_snapshot(params, prepared.snapshot) or snapshot_docs(params)
    if snapshot.data_rev != prepared.snapshot.data_rev:
        raise RuntimeError(
            f"the documents changed while this run was planning (scanned revision {prepared.snapshot.data_rev[:12]}, "
            f"now {snapshot.data_rev[:12]}); nothing was written. Run the re-index again."
        )
    return replace(prepared, snapshot=snapshot)


def _document_counts(prepared: Prepared) -> dict[str, int]:
    """Files, not rule hits. added/modified/renamed count documents that enter the index; a failing one is
    counted once, as quarantined (and as still quarantined when the last run already held the same content)."""
    failed = set(prepared.report.failed_ids)
    changes = prepared.changes
    return {
        "added": sum(p not in failed for p in changes.added),
        "modified": sum(p not in failed for p in changes.modified),
        "renamed": sum(p not in failed for p in changes.renamed),
        "deleted": len(changes.deleted),
        "unchanged": len(changes.unchanged),
        "quarantined": len(failed),
        "still_quarantined": len(prepared.still_quarantined),
        "skipped": len(prepared.skipped),
        "transcoded": sum(n.rule == "transcoded" for n in prepared.report.notes),
    }


def _quarantined_files(prepared: Prepared) -> list[dict[str, Any]]:
    """One entry per failed file with every rule it failed ("rule" joins them; "rules" lists them)."""
    still = set(prepared.still_quarantined)
    return [
        {
            "doc_id": doc_id,
            "rule": ", ".join(f.rule for f in failures),
            "rules": [f.rule for f in failures],
            "detail": "; ".join(f.detail for f in failures),
            "still": doc_id in still,
        }
        for doc_id, failures in prepared.report.rules_by_file().items()
    ]


def _skipped_files(skipped: tuple[str, ...], examples: int = 5) -> dict[str, Any]:
    by_suffix: dict[str, int] = {}
    for path in skipped:
        suffix = PurePosixPath(path).suffix.lower() or "(no suffix)"
        by_suffix[suffix] = by_suffix.get(suffix, 0) + 1
    return {"count": len(skipped), "by_suffix": dict(sorted(by_suffix.items())), "examples": list(skipped[:examples])}


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
    documents, _ = split_documents(snapshot.manifest, params.corpus.suffixes)
    changes = diff_manifests(old_manifest, documents, dirty)

    report, good, skipped = _read_and_validate(params, documents, changes, old_manifest)
    chunks_by_doc = _chunk(params, embedder, good, changes)
    collection = previous.collection if incremental else _new_collection_name(alias, snapshot.data_rev, chunking)
    existing = store.fetch_meta(collection, doc_ids=list(chunks_by_doc)) if incremental else {}
    current = store.count(collection) if incremental else 0
    plan = plan_writes(chunks_by_doc, existing, current)
    guard = _deletion_guard(params, plan, current, previous, snapshot, incremental)

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
        skipped=skipped,
        still_quarantined=_still_quarantined(params, report, snapshot.manifest),
        seconds={"prepare": time.perf_counter() - started},
        deletion_guard=guard,
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
    params: Params, documents: dict[str, str], changes: ChangeSet, indexed: dict[str, str]
) -> tuple[ValidationReport, list, tuple[str, ...]]:
    """Read the new and changed documents; run the Great Expectations suite over them. Returns the report, the
    documents that passed, and the files skipped as not documents.

    Files that never reach the manifest (symlinks leaving the folder, which the snapshot must not follow) are
    found by a directory walk, so they are reported on every run instead of vanishing silently. The same walk
    finds the files that are not documents: skipped (corpus.other_files: skip), or each one an unsupported_type
    failure that counts in the failure ratio (corpus.other_files: quarantine).
    """
    from lorag.corpus.reader import read_documents, scan
    from lorag.validation.documents import validate_documents

    corpus = params.corpus
    dupes = duplicate_paths(documents, indexed)
    wanted = [p for p in changes.to_read if p not in dupes]
    docs, rejected = read_documents(
        corpus.docs_dir, wanted, corpus.max_file_bytes, detect_encoding=corpus.detect_encoding
    )
    listing = scan(corpus.docs_dir, corpus.suffixes)
    seen = {*wanted, *documents}
    rejected += [r for r in listing.rejected if r.doc_id not in seen]
    rejected += [
        Rejected(doc_id=p, rule="duplicate_content", detail=f"same bytes as {dupes[p]}, which is indexed")
        for p in changes.to_read
        if p in dupes
    ]
    skipped, corpus_size = tuple(listing.others), len(documents)
    if corpus.other_files == "quarantine":
        detail = f"not a document type (corpus.suffixes {list(corpus.suffixes)}; corpus.other_files: quarantine)"
        rejected += [Rejected(p, "unsupported_type", detail) for p in skipped]
        skipped, corpus_size = (), corpus_size + len(skipped)
    kinds = ("markdown", "text", "rst", "html")
    report = validate_documents(docs, rejected, params.validation, kinds, corpus_size=corpus_size)
    passed = set(report.passed)
    return report, [d for d in docs if d.doc_id in passed], skipped


def _still_quarantined(params: Params, report: ValidationReport, manifest: dict[str, str]) -> tuple[str, ...]:
    """Failed paths that the last quarantine report already held with the same content (md5; None for a file
    the snapshot does not hash, such as a symlink leading outside the folder)."""
    from lorag.validation.quarantine import quarantined_before

    before = quarantined_before(params.validation.quarantine_dir)
    return tuple(p for p in report.failed_ids if p in before and before[p] == manifest.get(p))


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


def _deletion_guard(
    params: Params, plan: WritePlan, current: int, previous: IndexState | None, snapshot: Snapshot, incremental: bool
) -> str | None:
    """Why this plan deletes too much of the published index, or None. Applies to every mode: a --full rebuild
    after most documents vanished would publish what is left just as silently."""
    limit = params.index.max_delete_ratio
    if incremental and current:
        lost, total, what = len(plan.deletes), current, "chunks"
    elif previous is not None and previous.manifest:
        lost, total, what = len(previous.manifest.keys() - snapshot.manifest.keys()), len(previous.manifest), "documents"
    else:
        return None
    if lost / total <= limit:
        return None
    return (
        f"this run would remove {lost} of {total} published {what} ({lost / total:.0%}), more than "
        f"index.max_delete_ratio={limit:.0%}. Nothing was written. If the deletions are intended, re-run with "
        "--accept-deletions (or raise index.max_delete_ratio)."
    )


def _new_collection_name(alias: str, data_rev: str, chunking: str) -> str:
    """Named from the data revision and the embedder/chunking fingerprint (readable), the time (sortable) and a
    random suffix: unique by construction, so two rebuilds in the same second never share a collection, and
    `create_collection` refuses a name that exists anyway."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{alias}_{data_rev[:8]}_{chunking[:8]}_{stamp}_{uuid.uuid4().hex[:8]}".lower()
