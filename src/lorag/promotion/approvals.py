"""The rules every approval obeys, whichever way it comes (the Prefect form, `lorag approve`): a pure check.

The open-source Prefect server records nothing about who resumed a run, so the reviewer's name is part of the
input and checked here. When MLflow credentials are in the environment (MLFLOW_TRACKING_USERNAME, a basic-auth
server), the name must also be that account: a reviewer cannot sign as someone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorag.config import PromotionParams


class ApprovalRefused(PermissionError):
    """An approval broke a rule; `rule` names it (recorded in the audit log), the message says what to do."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class ApprovalRequest:
    version: str
    by: str
    reason: str
    override: bool = False  # promote although the gates failed (only where promotion.allow_override)


@dataclass(frozen=True)
class VersionFacts:
    """What the rules need to know about the version and the registry, read by the caller."""

    gates_approved: bool
    trainer: str | None  # lorag.started_by of the version; None when unknown
    champion_version: str | None  # candidate version behind the current champion
    challenger_version: str | None
    auth_user: str | None = None  # MLFLOW_TRACKING_USERNAME when set


def check_approval(rules: PromotionParams, request: ApprovalRequest, facts: VersionFacts) -> None:
    """Raise ApprovalRefused on the first rule broken; return None when the approval may proceed."""
    by, version = request.by.strip(), int(request.version)
    if by not in rules.approvers:
        raise ApprovalRefused("unlisted_approver", f"{by!r} is not in promotion.approvers "
                              f"({', '.join(rules.approvers) or 'empty'}): ask one of them to review version {version}")
    if facts.auth_user is not None and facts.auth_user != by:
        raise ApprovalRefused("identity", f"--by {by!r} but the MLflow credentials in the environment are "
                              f"{facts.auth_user!r}: approve with your own name and credentials")
    if not request.reason.strip():
        raise ApprovalRefused("no_reason", "an approval needs a reason: pass --reason '...'")
    newer = [v for v in (facts.champion_version, facts.challenger_version) if v is not None and int(v) > version]
    if newer:
        raise ApprovalRefused("superseded", f"version {version} is superseded by version {max(map(int, newer))}: "
                              "review the current challenger (`lorag review`)")
    if rules.four_eyes and (facts.trainer is None or facts.trainer == by):
        who = "unknown (no lorag.started_by tag)" if facts.trainer is None else facts.trainer
        raise ApprovalRefused("four_eyes", f"version {version} was trained by {who}; with promotion.four_eyes "
                              "another approver must review it")
    if not facts.gates_approved:
        if not request.override:
            raise ApprovalRefused("gates_failed", f"version {version} failed its gates (see `lorag review`); it "
                                  "cannot be approved" + (" without --override" if rules.allow_override else ""))
        if not rules.allow_override:
            raise ApprovalRefused("override_not_allowed", "promotion.allow_override is false: a version that "
                                  "failed its gates cannot be promoted")
