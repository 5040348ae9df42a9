"""Answer-path test support: one project with the sample corpus indexed and one adapter registered, per session.

Real parts throughout: the sample docs embedded into LanceDB with the real embedder, a tiny adapter trained under
accelerate on the sample examples, registered as `challenger` on the session's real MLflow server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.behavior import make_behavior_project
from support.reindex import copy_sample


@pytest.fixture(scope="session")
def rag_project(tmp_path_factory: pytest.TempPathFactory, sample_base_model: Path, mlflow_server: str,
                shared_embedding_cache: Path) -> Iterator[Path]:
    """(root) of a project with a published index and version 1 of `rag-adapter` as challenger."""
    from lorag.config import load_params
    from lorag.reindex.run import run_reindex
    from lorag.retrain.evaluate import evaluate
    from lorag.retrain.register import register
    from lorag.retrain.train import record, train

    root = tmp_path_factory.mktemp("rag") / "project"
    overrides = {"versioning": {"enabled": False}, "corpus": {"docs_dir": "data/docs"},
                 "embedding": {"cache_path": str(shared_embedding_cache)},
                 "mlflow": {"tracking_uri": mlflow_server, "train_experiment": "rag-train",
                            "registered_model": "rag-adapter"}}
    make_behavior_project(root, sample_base_model, overrides)
    copy_sample(root)
    params = load_params(root / "params.yaml")
    run_reindex(params)
    trained = train(params, root / "runs" / "one")
    record(params, trained)
    register(params, trained.run, evaluate(params, trained.run))
    yield root
