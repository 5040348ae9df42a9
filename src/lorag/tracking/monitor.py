"""MLflow I/O of drift monitoring: what the champion was trained on, and one run per routing decision.

Each check is a run in `monitoring.experiment` with every known signal as a metric (a missing one is a tag
`lorag.missing.<name>` with its reason, never a 0), the decision in tags, the rationale and signals as JSON, and
a plot of the signals over the recent checks. The N-of-M window reads its history back from these runs.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any

from lorag.drift.facts import ChampionFacts

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.drift.route import Check, Decision
    from lorag.drift.signals import Signal

CHAMPION = "champion"


def _tag(tags: dict[str, str], key: str) -> str | None:
    value = tags.get(key)
    return None if value in (None, "", "none") else value


def champion_facts(params: Params) -> ChampionFacts | None:
    """The champion's candidate version (released by `lorag approve` into promotion.released_model, where the
    alias lives), its lineage and evaluation; None when nothing is champion yet."""
    from mlflow import MlflowClient

    from lorag.tracking import configure_mlflow
    from lorag.tracking.adapters import ModelNotFound, find_version

    configure_mlflow(params, params.mlflow.train_experiment)
    client = MlflowClient(params.tracking_uri)
    try:
        mv = find_version(params, CHAMPION)
    except ModelNotFound:
        return None  # no registered model, or no champion yet
    tags = dict(mv.tags)
    examples = None
    run_id = _tag(tags, "lorag.train_run_id") or mv.run_id
    if run_id:
        value = client.get_run(run_id).data.metrics.get("examples")
        examples = None if value is None else int(value)
    evaluation, error = _evaluation(params, str(mv.version))
    return ChampionFacts(str(mv.version), _tag(tags, "lorag.index_data_rev"), _tag(tags, "lorag.examples_data_rev"),
                         examples, evaluation, error, _frozen_index(params, client))


def _frozen_index(params: Params, client: Any) -> str | None:
    """The index collection frozen when the champion was released (lorag.promotion.index_release)."""
    from lorag.tracking.registry import champion_source

    source = champion_source(params, client)
    if source is None:
        return None
    tags = client.get_model_version(params.promotion.released_model, source[0]).tags or {}
    return _tag(tags, "lorag.release.index_collection")


def _evaluation(params: Params, version: str) -> tuple[dict[str, float], str | None]:
    """The champion's evaluation through the contract's reader (issue 7); missing with a reason until it exists."""
    try:
        from lorag.tracking.evaluation import read_evaluation  # type: ignore[import-not-found]
    except ImportError:
        return {}, ("the evaluation matrix is not available in this lorag (lorag.tracking.evaluation."
                    "read_evaluation): answer quality cannot be measured yet")
    try:
        return dict(read_evaluation(params, version)), None
    except Exception as exc:  # noqa: BLE001 - the reader's own error says what is missing; keep it as the reason
        return {}, f"champion v{version}: {exc}"


def history(params: Params, limit: int) -> list[Check]:
    """The last `limit` checks, oldest first, as the routing window needs them."""
    from mlflow import MlflowClient

    from lorag.drift.route import Check
    from lorag.tracking import configure_mlflow

    if limit <= 0:
        return []
    experiment_id = configure_mlflow(params, params.monitoring.experiment)
    runs = MlflowClient(params.tracking_uri).search_runs([experiment_id], order_by=["attributes.start_time DESC"],
                                                         max_results=limit)

    def split(value: str | None) -> frozenset[str]:
        return frozenset(v for v in (value or "").split(",") if v)

    return [Check(split(r.data.tags.get("lorag.wants")), split(r.data.tags.get("lorag.acted"))) for r in reversed(runs)]


def record_decision(params: Params, signals: dict[str, Signal], decision: Decision) -> str:
    """One run per check: signals as metrics, decision as tags, rationale + plot as artifacts; returns the run id."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, RunTag

    from lorag.tracking import configure_mlflow

    experiment_id = configure_mlflow(params, params.monitoring.experiment)
    client = MlflowClient(params.tracking_uri)
    tags = {"lorag.action": decision.action, "lorag.wants": ",".join(sorted(decision.wants)),
            "lorag.acted": ",".join(sorted(decision.tracks))}
    tags.update({f"lorag.missing.{s.name}": (s.missing or "NaN")[:4000] for s in signals.values() if not s.known})
    run = client.create_run(experiment_id, run_name=f"check-{time.strftime('%Y%m%dT%H%M%S')}", tags=tags)
    now = int(time.time() * 1000)
    metrics = [Metric(s.name, float(s.value), now, 0) for s in signals.values() if s.known]
    metrics += [Metric(f"votes.{k}", float(v), now, 0) for k, v in decision.votes.items()]
    metrics += [Metric(f"{s.name}.{k}", float(v), now, 0) for s in signals.values()
                for k, v in s.detail.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    client.log_batch(run.info.run_id, metrics=metrics, tags=[RunTag("lorag.rationale", " | ".join(decision.rationale)[:4900])])
    client.log_dict(run.info.run_id, {"action": decision.action, "wants": sorted(decision.wants),
                                      "votes": decision.votes, "rationale": decision.rationale,
                                      "signals": {s.name: {"value": None if not s.known else s.value, "detail": s.detail,
                                                           "missing": s.missing} for s in signals.values()}},
                    "decision.json")
    _log_plot(params, client, experiment_id, run.info.run_id)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def _log_plot(params: Params, client: Any, experiment_id: str, run_id: str, last: int = 200) -> None:
    """The signals over the recent checks, with the action of each: what changed, and when it acted."""
    import tempfile
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(reversed(client.search_runs([experiment_id], order_by=["attributes.start_time DESC"], max_results=last)))
    names = ("query_drift.p_value", "retrieval_health", "corpus_change", "answer_quality")
    fig, ax = plt.subplots(figsize=(9, 4))
    times = [r.info.start_time / 1000 for r in runs]
    for name in names:
        points = [(t, r.data.metrics[name]) for t, r in zip(times, runs) if name in r.data.metrics]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    for t, r in zip(times, runs):
        if r.data.tags.get("lorag.action", "nothing") != "nothing":
            ax.axvline(t, color="red", alpha=0.3)
            ax.annotate(r.data.tags["lorag.action"], (t, 1.0), fontsize=7, rotation=90, va="top")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("check time (unix s)")
    ax.set_title("lorag drift signals per check (red: a track was started)")
    ax.legend(loc="upper left", fontsize=7)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "drift_over_time.png"
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        client.log_artifact(run_id, str(path))


def decision_json(signals: dict[str, Signal], decision: Decision) -> str:
    """What `lorag drift --json` prints."""
    return json.dumps({"action": decision.action, "wants": sorted(decision.wants), "votes": decision.votes,
                       "rationale": decision.rationale,
                       "signals": {n: {"value": s.value if s.known else None, "missing": s.missing, **s.detail}
                                   for n, s in signals.items()}}, indent=2, default=str)
