"""Review and promotion commands: `lorag review`, `approve`, `reject`, `rollback`, `history`.

Each makes one call into lorag.promotion. `approve` and `reject` also resume the retrain flow run paused for that
version when PREFECT_API_URL points at its server, so a terminal and the Prefect UI give the same decision.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, Optional, TypeVar

import typer

from lorag.cli.common import ParamsOpt, SetOpt, cli_params, fail

T = TypeVar("T")

ByOpt = Annotated[str, typer.Option("--by", help="your name, as listed in promotion.approvers")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="why: recorded in the audit log")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def review(
    version: Annotated[Optional[str], typer.Argument(help="version to review (default: the challenger)")] = None,
    params_path: ParamsOpt = None,
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a version beside the champion: metrics, the gate decision, lineage, answers that changed.

    The gate decision is recorded (version tags, evaluation run, audit log) the first time it is seen.

    Examples:
      lorag review
      lorag review 3 --json
    """
    from lorag.promotion.review import build_review, record_decision

    params = cli_params(params_path, overrides)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            found = build_review(params, version)
            record_decision(params, found)
    except (LookupError, RuntimeError, ValueError) as exc:
        fail(exc)
    names = sorted({g.metric for g in params.promotion.gates} | set(params.promotion.key_metrics))
    rows = [(n, found.candidate.get(n), (found.champion or {}).get(n)) for n in names]
    lineage = {k.removeprefix("lorag."): v for k, v in found.tags.items()
               if k in ("lorag.train_run_id", "lorag.eval_run_id", "lorag.examples_data_rev", "lorag.index_data_rev",
                        "lorag.index_collection", "lorag.base_model", "lorag.started_by", "lorag.git_commit")}
    if as_json:
        print(json.dumps({"version": found.version, "champion_version": found.champion_version,
                          "decision": found.decision.to_dict(), "metrics": {n: [c, h] for n, c, h in rows},
                          "lineage": lineage, "samples": found.samples}, indent=2, default=str))
        return
    _print_review(found, rows, lineage)


def _print_review(found: Any, rows: list, lineage: dict) -> None:
    from lorag.console import output_console
    from rich.table import Table

    console = output_console()
    champion = f"champion v{found.champion_version}" if found.champion_version else "no champion (vs base only)"
    table = Table(title=f"version {found.version}  vs  {champion}")
    for col in ("metric", f"v{found.version}", "champion"):
        table.add_column(col)
    for name, mine, theirs in rows:
        table.add_row(name, _fmt(mine), _fmt(theirs))
    console.print(table)
    verdict = "[green]PASSED[/green]" if found.decision.approved else "[red]FAILED[/red]"
    console.print(f"gates {verdict}: {found.decision.rationale}", highlight=False)
    for c in found.decision.criteria:
        mark = "ok  " if c.passed else "FAIL"
        console.print(f"  {mark} {c.detail}", highlight=False)
    console.print("lineage: " + ", ".join(f"{k}={v}" for k, v in sorted(lineage.items())), highlight=False)
    for sample in found.samples:
        console.print(f"  Q: {sample['question']}\n    new: {sample['candidate']}", highlight=False)
    if not found.samples:
        console.print("  (no changed sample answers recorded)")


def approve(
    version: Annotated[str, typer.Argument(help="the version to release as champion")],
    by: ByOpt,
    reason: ReasonOpt,
    override: Annotated[bool, typer.Option("--override", help="release although the gates failed (only where "
                                           "promotion.allow_override; recorded)")] = False,
    params_path: ParamsOpt = None,
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a version: it becomes `champion` (the previous one stays reachable as `previous-champion`).

    Examples:
      lorag approve 3 --by alice --reason "better citations, same loss"
    """
    from lorag.promotion.approvals import ApprovalRequest
    from lorag.promotion.promote import approve as run_approve

    params = cli_params(params_path, overrides)
    request = ApprovalRequest(version, by, reason, override)
    manifest, resumed = _decide(params, request, "approve", lambda: run_approve(params, request))
    out = {"champion": version, "released_version": manifest["released_version"], "resumed_flow_run": resumed,
           "manifest": {k: manifest.get(k) for k in ("approver", "approved_at", "docs_data_rev", "index_collection",
                                                     "adapter_sha256", "train_run_id", "eval_run_id")}}
    print(json.dumps(out, indent=2, default=str) if as_json else
          f"version {version} is champion ({params.promotion.released_model} v{manifest['released_version']}), "
          f"approved by {by}" + (f"; resumed flow run {resumed}" if resumed else ""))


def reject(
    version: Annotated[str, typer.Argument(help="the version to reject")],
    by: ByOpt,
    reason: ReasonOpt,
    params_path: ParamsOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Reject a version (recorded); it is never promoted by this review.

    Examples:
      lorag reject 4 --by bob --reason "answers cite the wrong page"
    """
    from lorag.promotion.approvals import ApprovalRequest
    from lorag.promotion.promote import reject as run_reject

    params = cli_params(params_path, overrides)
    request = ApprovalRequest(version, by, reason, False)
    _, resumed = _decide(params, request, "reject", lambda: run_reject(params, version, by, reason))
    print(f"version {version} rejected by {by}" + (f"; resumed flow run {resumed}" if resumed else ""))


def _decide(params: Any, request: Any, decision: str, act: Callable[[], T]) -> tuple[T, str | None]:
    """Run the decision (`act`, which records it), then resume the flow run paused for this version's review,
    if one waits; returns (what `act` returned, the resumed flow run id). Errors end the command with one line."""
    from lorag.promotion.approvals import ApprovalRefused
    from lorag.promotion.manifest import MissingLink
    from lorag.promotion.resume import resume_if_waiting

    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = act()
            resumed = resume_if_waiting(params, request.version, {"decision": decision, "reviewer": request.by,
                                                                  "reason": request.reason, "override": request.override})
    except (ApprovalRefused, MissingLink) as exc:
        # approve records every refusal; reject records the ones past its argument checks
        fail(RuntimeError(f"refused (recorded in the audit log): {exc}") if decision == "approve" else exc)
    except (LookupError, RuntimeError, ValueError) as exc:
        fail(exc)
    return result, resumed


def rollback(
    by: ByOpt,
    reason: ReasonOpt,
    index: Annotated[bool, typer.Option("--index", help="also restore the index the release answered from")] = False,
    params_path: ParamsOpt = None,
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move `champion` back to the previous release, verify it (alias read back, model loaded).

    Examples:
      lorag rollback --by alice --reason "regression in production"
      lorag rollback --index --by alice --reason "bad docs release"
    """
    from lorag.promotion.approvals import ApprovalRefused
    from lorag.promotion.rollback import rollback as run_rollback

    params = cli_params(params_path, overrides)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = run_rollback(params, by, reason, index=index)
    except (ApprovalRefused, LookupError, RuntimeError, ValueError) as exc:
        fail(exc)
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    restored = result["index"]
    print(f"champion: version {result['from_version']} -> {result['to_version']} (verified: alias read back, model "
          "loaded)" + (f"; index restored to {restored['collection']} ({restored['chunks']} chunks, docs "
                       f"{restored['docs_data_rev']})" if restored else ""))


def history(
    at: Annotated[Optional[str], typer.Option("--at", help="ISO time: which version was champion then")] = None,
    params_path: ParamsOpt = None,
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the audit log: gate decisions, approvals, refusals, rejections, alias moves, rollbacks.

    Examples:
      lorag history
      lorag history --at 2026-12-02T21:00:00Z
    """
    from lorag.promotion.ledger import alias_at, parse_time
    from lorag.tracking.audit import read_events

    params = cli_params(params_path, overrides)
    try:
        when = parse_time(at) if at else None
        with contextlib.redirect_stdout(sys.stderr):
            events = read_events(params)
    except (LookupError, RuntimeError, ValueError) as exc:
        fail(exc)
    if when is not None:
        events = [e for e in events if parse_time(e.at) <= when]
    champion = alias_at(events, "champion", when) if when else None
    if as_json:
        print(json.dumps({"at": at, "champion": champion, "events": [e.to_dict() for e in events]}, indent=2))
        return
    for event in events:
        print(event.line())
    if when is not None:
        print(f"champion at {at}: " + (f"version {champion}" if champion else "none"))


def models_or_error(params: Any) -> dict[str, Any]:
    """Champion and challenger for `lorag status`; an unreachable registry is shown, never fatal there."""
    from lorag.promotion.status import model_status

    from lorag.promotion.status import flows_or_error

    try:
        with contextlib.redirect_stdout(sys.stderr):
            found = model_status(params)
    except Exception as exc:  # noqa: BLE001 - status must still show the index when MLflow is down
        found = {"error": f"{type(exc).__name__}: {exc}"}
    return {**found, "flows": flows_or_error()}


def print_models(console: Any, models: dict[str, Any]) -> None:
    flows = models.get("flows")
    if flows and "error" in flows:
        console.print(f"flows: [yellow]Prefect server unavailable[/yellow] ({flows['error']})", highlight=False)
    for name, run in ({} if flows is None or "error" in flows else flows).items():
        console.print(f"[bold]{name}[/bold]  last run {run['run']}: {run['state']} ({run['start']})",
                      highlight=False)
    if flows is None:
        console.print("flows: set PREFECT_API_URL to see the last run of each flow")
    if "error" in models:
        console.print(f"models: [yellow]registry unavailable[/yellow] ({models['error']})", highlight=False)
        return
    for role in ("champion", "challenger"):
        found = models.get(role)
        if found is None:
            console.print(f"[bold]{role}[/bold]  none" + ("  (lorag approve VERSION)" if role == "champion" else ""))
            continue
        metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in found["metrics"].items()) or "no evaluation"
        extra = (f"released v{found['released_version']} by {found['approved_by']} at {found['approved_at']}, "
                 f"docs {found['docs_data_rev']}, index {found['index_collection']}" if role == "champion"
                 else f"gates {found['gates']}, review {found['review']}")
        console.print(f"[bold]{role}[/bold]  version {found['version']} (age {found['age']}): {metrics}; {extra}",
                      highlight=False)
