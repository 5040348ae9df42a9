"""What a reviewer sees, and what the gates decided: a version beside the champion, read from MLflow.

The gate decision is recorded once per evidence (same metrics, same gates -> same hash): on the version's tags
(`lorag.gate.*`), as `gate_decision.json` on its evaluation run, and as a `gate_decision` event in the ledger.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lorag.promotion.gates import CHAMPION_ROW, Decision, as_adapter_rows, base_reference, decide

if TYPE_CHECKING:
    from lorag.config import Params

SAMPLE_LIMIT = 5


@dataclass
class Review:
    version: str
    candidate: dict[str, float]
    champion_version: str | None  # candidate-model version behind the current champion
    champion: dict[str, float] | None
    decision: Decision
    tags: dict[str, str]  # the version's lineage tags
    challenger_version: str | None
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def trainer(self) -> str | None:
        return self.tags.get("lorag.started_by") or None

    @property
    def eval_run_id(self) -> str | None:
        return self.tags.get("lorag.eval_run_id") or None


def champion_reference(candidate: dict[str, float], champion_own: dict[str, float] | None) -> dict[str, float]:
    """The champion's values under the adapter rows' names. Its rows in the candidate's matrix (same questions,
    same index) win over its own older evaluation, which still supplies what the matrix has no row for (loss)."""
    return {**(champion_own or {}), **as_adapter_rows(candidate, CHAMPION_ROW)}


def build_review(params: Params, version: str | None = None) -> Review:
    """Read the version (default: the challenger), its evaluation, the champion's, and decide the gates."""
    from lorag.tracking.evaluation import NoEvaluation, read_evaluation
    from lorag.tracking.registry import alias_version, champion_source, registry_client

    client = registry_client(params)
    name = params.mlflow.registered_model
    challenger = alias_version(client, name, "challenger")
    if version is None:
        if challenger is None:
            raise LookupError(f"{name!r} has no challenger to review: train and register one "
                              "(`lorag train --register` or `python -m flows.retrain`)")
        version = str(challenger.version)
    tags = dict(client.get_model_version(name, str(version)).tags or {})
    candidate = read_evaluation(params, version)  # NoEvaluation names the command that makes one
    source = champion_source(params, client)
    champion_version = source[1] if source and source[1] != str(version) else None
    champion = None
    if champion_version is not None:
        try:
            own = read_evaluation(params, champion_version)
        except NoEvaluation:
            own = None  # then only its rows in the candidate's matrix count; a gate on anything else fails closed
        champion = champion_reference(candidate, own)
    decision = decide(candidate, champion, base_reference(candidate), params.promotion.gates)
    review = Review(str(version), candidate, champion_version, champion, decision, tags,
                    None if challenger is None else str(challenger.version))
    review.samples = changed_samples(review)
    return review


def changed_samples(review: Review) -> list[dict[str, Any]]:
    """Up to SAMPLE_LIMIT questions whose answer differs between the candidate and the row it replaces
    (champion + RAG when the matrix has it, else base + RAG), from the evaluation's per-question table."""
    import mlflow

    if review.eval_run_id is None:
        return []
    listed = {a.path for a in mlflow.MlflowClient().list_artifacts(review.eval_run_id)}
    if "eval_per_question.json" not in listed:
        return []  # an evaluation without the table is still reviewable; the view says no samples were recorded
    # log_table's layout ({"columns": [...], "data": [[...], ...]}), read as the artifact it is: mlflow.load_table
    # raised "No runs found with the corresponding table artifact" for a run listing the file (MLflow 3.17.2).
    table = mlflow.artifacts.load_dict(f"runs:/{review.eval_run_id}/eval_per_question.json")
    records = [dict(zip(table["columns"], row)) for row in table["data"]]
    rows = {r["configuration"] for r in records}
    other = "champion_rag" if "champion_rag" in rows else "base_rag"
    mine = {r["question_id"]: r for r in records if r["configuration"] == "adapter_rag"}
    theirs = {r["question_id"]: r for r in records if r["configuration"] == other}
    out = []
    for qid in sorted(mine.keys() & theirs.keys()):
        if mine[qid]["answer"] != theirs[qid]["answer"]:
            out.append({"question": mine[qid]["question"], "gold": mine[qid]["gold_answer"],
                        "candidate": mine[qid]["answer"], other: theirs[qid]["answer"]})
        if len(out) >= SAMPLE_LIMIT:
            break
    return out


def record_decision(params: Params, review: Review) -> bool:
    """Record the gate decision (tags, eval run artifact, ledger) unless this evidence was already recorded;
    returns True when it wrote a new record."""
    from lorag.promotion.ledger import AuditEvent
    from lorag.tracking.audit import append_event
    from lorag.tracking.registry import registry_client

    decision = review.decision
    if review.tags.get("lorag.gate.evidence_hash") == decision.evidence_hash:
        return False
    client = registry_client(params)
    name = params.mlflow.registered_model
    for key, value in {"lorag.gate.approved": str(decision.approved).lower(),
                       "lorag.gate.rationale": decision.rationale[:4900],
                       "lorag.gate.failed": ", ".join(f"{c.metric}:{c.check}" for c in decision.failed) or "none",
                       "lorag.gate.evidence_hash": decision.evidence_hash}.items():
        client.set_model_version_tag(name, review.version, key, value)
    if review.eval_run_id:
        client.log_dict(review.eval_run_id, decision.to_dict(), "gate_decision.json")
    event = AuditEvent("gate_decision", name, review.version, "lorag", decision.rationale[:2000],
                       evidence_hash=decision.evidence_hash, details={"approved": decision.approved})
    append_event(params, event, {"gate_decision.json": decision.to_dict()})
    review.tags["lorag.gate.evidence_hash"] = decision.evidence_hash
    return True


def auth_user() -> str | None:
    """The MLflow account in the environment (basic auth), which an approver's --by must match."""
    return os.environ.get("MLFLOW_TRACKING_USERNAME") or None
