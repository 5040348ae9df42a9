"""Approve (promote to `champion`) or reject a reviewed version; every outcome, refusals included, is recorded.

Order, so that a crash anywhere leaves the registry as it was or the promotion complete: check the rules, build
the release manifest (freezing the index), copy the version into the released model, then move
`previous-champion` and `champion` there, each move logged, and the released RAG app's aliases after them
(lorag.tracking.rag_app.follow_release). Approving the version that is already champion is a
no-op that returns its manifest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lorag.promotion.approvals import ApprovalRefused, ApprovalRequest, VersionFacts, check_approval
from lorag.promotion.ledger import AuditEvent, now_iso

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.promotion.review import Review

MANIFEST_FILE = "release_manifest.json"
TAG_AUDIT_RUN = "lorag.release.audit_run_id"


def _event(params: Params, kind: str, version: str | None, actor: str, reason: str = "", **kw: Any) -> AuditEvent:
    from lorag.tracking.audit import append_event

    artifacts = kw.pop("artifacts", None)
    event = AuditEvent(kind, params.mlflow.registered_model, version, actor, reason, **kw)
    event.details["audit_run_id"] = append_event(params, event, artifacts)  # the dict, not the event, changes
    return event


def refuse(params: Params, version: str, by: str, rule: str, message: str, evidence: str | None = None) -> None:
    """Record a refused approval (the bypass attempt is part of the audit trail)."""
    _event(params, "refused", version, by or "(nobody)", message[:2000], evidence_hash=evidence,
           details={"rule": rule})


def require_approver(params: Params, version: str | None, by: str, action: str) -> None:
    """Only names in promotion.approvers may reject or roll back either; a refusal is recorded."""
    if by.strip() not in params.promotion.approvers:
        message = (f"{by!r} may not {action}: not in promotion.approvers "
                   f"({', '.join(params.promotion.approvers) or 'empty'})")
        refuse(params, version or "-", by, "unlisted_approver", message)
        raise ApprovalRefused("unlisted_approver", message)


def approve(params: Params, request: ApprovalRequest) -> dict[str, Any]:
    """Apply the rules, release the version as `champion`; returns the release manifest.

    Raises ApprovalRefused (or MissingLink) after recording the refusal.
    """
    from lorag.promotion.manifest import MissingLink
    from lorag.promotion.review import auth_user, build_review, record_decision
    from lorag.tracking.evaluation import NoEvaluation
    from lorag.tracking.rag_app import follow_release
    from lorag.tracking.registry import champion_source, registry_client

    client = registry_client(params)
    source = champion_source(params, client)
    if source is not None and source[1] == str(request.version):
        follow_release(params, client)  # repairs a promotion that crashed before the app's aliases moved
        return current_manifest(params)  # already champion: approving again changes nothing else
    try:
        review = build_review(params, request.version)
    except NoEvaluation as exc:
        refuse(params, request.version, request.by, "no_evaluation", str(exc))
        raise ApprovalRefused("no_evaluation", str(exc)) from None
    record_decision(params, review)
    facts = VersionFacts(review.decision.approved, review.trainer, review.champion_version,
                         review.challenger_version, auth_user())
    try:
        check_approval(params.promotion, request, facts)
        manifest = _build_manifest(params, client, review, request)
    except (ApprovalRefused, MissingLink) as exc:
        refuse(params, request.version, request.by, getattr(exc, "rule", "missing_link"), str(exc),
               review.decision.evidence_hash)
        raise
    _release(params, client, review, request, manifest, source)
    return manifest


def _build_manifest(params: Params, client: Any, review: Review, request: ApprovalRequest) -> dict[str, Any]:
    from lorag.promotion.index_release import freeze_index
    from lorag.promotion.manifest import MissingLink, check_manifest, missing_links

    tags = review.tags
    manifest = _lineage_links(params, client, review)
    missing = [k for k in missing_links(manifest) if k in manifest]
    if missing:  # refuse before the index is frozen: a copy for a release that cannot happen is waste
        raise MissingLink(missing)
    manifest.update(freeze_index(params, review.version))  # index_state rides along: rollback --index needs it
    manifest.update(gate_decision=review.decision.to_dict(), approver=request.by, reason=request.reason,
                    override=request.override and not review.decision.approved, approved_at=now_iso(),
                    released_model=params.promotion.released_model, released_version="pending",
                    started_by=tags.get("lorag.started_by"))
    return check_manifest(manifest)


def _lineage_links(params: Params, client: Any, review: Review) -> dict[str, Any]:
    """Model, adapter hash, base model, examples and their validation, runs: read from MLflow, never assumed."""
    import tempfile
    from pathlib import Path

    import mlflow

    from lorag.promotion.manifest import base_revision, folder_sha256

    tags, name = review.tags, params.mlflow.registered_model
    version = client.get_model_version(name, review.version)
    train_run_id = tags.get("lorag.train_run_id") or version.run_id
    train_run = client.get_run(train_run_id)
    ratio = train_run.data.metrics.get("examples_failure_ratio")
    validation = None if ratio is None else {"failure_ratio": ratio,
                                             "passed": ratio <= params.examples.max_failure_ratio}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            # the whole logged model: a sub-path of a models:/m-<id> URI does not resolve (MLflow 3.17)
            local = mlflow.artifacts.download_artifacts(version.source, dst_path=tmp)
            adapter_hash = folder_sha256(Path(local) / "artifacts" / "adapter")
        except Exception:  # noqa: BLE001 - a model without its adapter files is a missing link, named below
            adapter_hash = None
    run_tags = train_run.data.tags
    return {"model_name": name, "model_version": review.version, "model_uri": version.source,
            "adapter_sha256": adapter_hash, "base_model": tags.get("lorag.base_model"),
            "base_model_revision": base_revision({**run_tags, **tags}) or _local_base_revision(params, tags),
            "examples_data_rev": tags.get("lorag.examples_data_rev"), "examples_validation": validation,
            "evaluated_docs_data_rev": tags.get("lorag.index_data_rev"),
            "train_run_id": train_run_id, "eval_run_id": review.eval_run_id}


def _local_base_revision(params: Params, tags: dict[str, str]) -> str | None:
    """A local base model has no hub revision: its content fingerprint stands in, when it is the same folder."""
    import hashlib
    import json

    from lorag.training.base_model import BaseModelRef

    ref = BaseModelRef.from_params(params)
    if ref.local_path is None or tags.get("lorag.base_model") not in (ref.name, ref.source, str(ref.local_path)):
        return None
    return "folder-sha256:" + hashlib.sha256(json.dumps(ref.fingerprint(), sort_keys=True).encode()).hexdigest()


def _release(params: Params, client: Any, review: Review, request: ApprovalRequest, manifest: dict[str, Any],
             source: tuple[str, str] | None) -> None:
    from lorag.promotion.manifest import manifest_hash
    from lorag.tracking.rag_app import follow_release
    from lorag.tracking.registry import CHAMPION, PREVIOUS_CHAMPION, release_copy

    released_name = params.promotion.released_model
    released = release_copy(params, client, review.version)
    manifest["released_version"] = released
    kind = "override" if manifest["override"] else "approval"
    event = _event(params, kind, review.version, request.by, request.reason, evidence_hash=
                   review.decision.evidence_hash, details={"released_version": released},
                   artifacts={MANIFEST_FILE: manifest})
    for key, value in {"lorag.release.manifest_hash": manifest_hash(manifest), "lorag.release.approver": request.by,
                       "lorag.release.reason": request.reason[:4900], "lorag.release.approved_at":
                       manifest["approved_at"], "lorag.release.index_collection": manifest["index_collection"],
                       "lorag.release.docs_data_rev": str(manifest["docs_data_rev"]),
                       TAG_AUDIT_RUN: event.details["audit_run_id"]}.items():
        client.set_model_version_tag(released_name, released, key, value)
    if review.eval_run_id:
        client.log_dict(review.eval_run_id, manifest, MANIFEST_FILE)
    client.set_model_version_tag(params.mlflow.registered_model, review.version, "lorag.review.status", kind)
    if source is not None:
        move_alias(params, client, PREVIOUS_CHAMPION, source[0], request.by, request.reason)
    move_alias(params, client, CHAMPION, released, request.by, request.reason)
    follow_release(params, client)


def move_alias(params: Params, client: Any, alias: str, released: str | None, actor: str, reason: str) -> None:
    """Point `alias` of the released model at `released` (None: remove it), and log the move with from/to."""
    from lorag.tracking.registry import TAG_SOURCE_VERSION, alias_version

    name = params.promotion.released_model
    before = alias_version(client, name, alias)
    if (before is None and released is None) or (before is not None and str(before.version) == released):
        return  # idempotent: nothing moves, nothing is logged
    if released is None:
        client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, released)
    src = {str(v.version): (v.tags or {}).get(TAG_SOURCE_VERSION) for v in [before] if v is not None}
    to_source = None if released is None else client.get_model_version(name, released).tags.get(TAG_SOURCE_VERSION)
    _event(params, "alias_move", to_source, actor, reason, alias=alias,
           from_version=src.get(str(before.version)) if before is not None else None, to_version=to_source,
           details={"released_model": name, "from_released": None if before is None else str(before.version),
                    "to_released": released})


def reject(params: Params, version: str, by: str, reason: str, kind: str = "rejection") -> None:
    """Record a rejection (or the flow's `timeout`); the version keeps `challenger`, nothing is promoted."""
    if kind not in ("rejection", "timeout"):
        raise ValueError(f"kind {kind!r}: rejection or timeout")
    if not reason.strip():
        raise ApprovalRefused("no_reason", "a rejection needs a reason: pass --reason '...'")
    if kind == "rejection":
        require_approver(params, str(version), by, "reject")
    from lorag.tracking.audit import read_events
    from lorag.tracking.registry import registry_client

    last = read_events(params, kind=kind, version=str(version))
    if last and (last[-1].actor, last[-1].reason) == (by, reason):
        return  # the CLI recorded it and then resumed the paused flow, which rejects again: one record
    _event(params, kind, str(version), by, reason)
    registry_client(params).set_model_version_tag(params.mlflow.registered_model, str(version), "lorag.review.status",
                                                  kind)


def current_manifest(params: Params, released: str | None = None) -> dict[str, Any] | None:
    """The manifest of the champion (or of released version `released`); None when there is no champion."""
    import mlflow

    from lorag.tracking.registry import CHAMPION, alias_version, registry_client

    client = registry_client(params)
    name = params.promotion.released_model
    found = client.get_model_version(name, released) if released else alias_version(client, name, CHAMPION)
    if found is None:
        return None
    run_id = (found.tags or {}).get(TAG_AUDIT_RUN)
    return None if run_id is None else mlflow.artifacts.load_dict(f"runs:/{run_id}/{MANIFEST_FILE}")
