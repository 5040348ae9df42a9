"""Promotion test support: a project with a versioned, published index and one real registered adapter, and
evaluation runs written by hand under the contract's names (decide() reads metrics, not how they were made).

Version 1 is a real adapter trained on the sample examples; further versions are the same logged model registered
again (`twin`), so a test gets many candidates for the cost of one training.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.behavior import make_behavior_project
from support.reindex import copy_sample

TRAINER = "tom"
GATES = [{"metric": "adapter_rag.f1", "direction": "higher", "threshold": 0.1, "min_margin_vs_champion": -0.05,
          "min_margin_vs_base": 0.0}]
PROMOTION = {"gates": GATES, "approvers": ["alice", "bob"], "four_eyes": True, "allow_override": False,
             "approval_timeout_s": 3600}


def good_metrics(f1: float = 0.5) -> dict[str, float]:
    return {"adapter_rag.f1": f1, "base_rag.f1": 0.2, "adapter.loss": 2.0, "base.loss": 3.0,
            "diff.adapter_rag_vs_base_rag.f1": f1 - 0.2, "diff.adapter_rag_vs_base_rag.f1.ci_low": f1 - 0.3,
            "diff.adapter_rag_vs_base_rag.f1.ci_high": f1 - 0.1, "retrieval.ndcg_at_10": 0.8}


def set_evaluation(params: Any, version: str, metrics: dict[str, float]) -> str:
    """An evaluation-matrix run for `version` holding `metrics` (NaN kept), linked from the version."""
    import mlflow
    from mlflow.entities import Metric

    from lorag.tracking import configure_mlflow

    experiment = configure_mlflow(params, params.mlflow.train_experiment)
    client = mlflow.MlflowClient()
    run = client.create_run(experiment, tags={"lorag.kind": "evaluation-matrix", "lorag.model_version": version})
    now = int(time.time() * 1000)
    client.log_batch(run.info.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
    client.set_terminated(run.info.run_id)
    client.set_model_version_tag(params.mlflow.registered_model, version, "lorag.eval_run_id", run.info.run_id)
    return run.info.run_id


def twin(params: Any, metrics: dict[str, float], started_by: str = TRAINER) -> str:
    """Register version 1's logged model again as a new version with 1's lineage tags; it becomes challenger."""
    import mlflow

    client = mlflow.MlflowClient(params.tracking_uri)
    name = params.mlflow.registered_model
    one = client.get_model_version(name, "1")
    new = str(mlflow.register_model(one.source, name).version)
    for key, value in (one.tags or {}).items():
        if key.startswith("lorag.") and not key.startswith(("lorag.gate.", "lorag.review.", "lorag.eval_run_id")):
            client.set_model_version_tag(name, new, key, value)
    client.set_model_version_tag(name, new, "lorag.started_by", started_by)
    client.set_registered_model_alias(name, "challenger", new)
    set_evaluation(params, new, metrics)
    return new


def make_promotion_project(root: Path, base_model: Path, mlflow_url: str, cache: Path, tag: str) -> Path:
    """Index the sample docs (DVC-versioned), snapshot + validate the examples, train and register version 1."""
    from lorag.config import load_params
    from lorag.reindex.run import run_reindex
    from lorag.retrain.evaluate import evaluate
    from lorag.retrain.examples import snapshot_examples, validate_examples
    from lorag.retrain.register import register
    from lorag.retrain.train import record, train

    overrides = {"corpus": {"docs_dir": "data/docs"}, "embedding": {"cache_path": str(cache)},
                 "index": {"keep_last": 1},
                 "mlflow": {"tracking_uri": mlflow_url, "train_experiment": f"{tag}-train",
                            "registered_model": f"{tag}-adapter"},
                 "promotion": {**PROMOTION, "audit_experiment": f"{tag}-audit", "released_model": f"{tag}-released"}}
    make_behavior_project(root, base_model, overrides)
    copy_sample(root)
    params = load_params(root / "params.yaml")
    run_reindex(params)
    snapshot_examples(params)
    validate_examples(params)
    os.environ["LORAG_USER"] = TRAINER  # who "started the training" (lorag.started_by)
    try:
        trained = train(params, root / "runs" / "one")
        record(params, trained)
        register(params, trained.run, evaluate(params, trained.run))
    finally:
        del os.environ["LORAG_USER"]
    set_evaluation(params, "1", good_metrics())
    return root


@pytest.fixture(scope="module")
def promo_project(tmp_path_factory: pytest.TempPathFactory, sample_base_model: Path, mlflow_server: str,
                  shared_embedding_cache: Path) -> Iterator[Path]:
    tag = f"promo{int(time.time() * 1000) % 10**8}"  # one session server: names unique per module
    yield make_promotion_project(tmp_path_factory.mktemp("promo") / "project", sample_base_model, mlflow_server,
                                 shared_embedding_cache, tag)


NAN = math.nan
