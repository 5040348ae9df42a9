"""Signals on a real project: the query log the search path writes (and does not, when off), documents that
differ from the published index, and `lorag drift` showing a decision without recording it."""

from __future__ import annotations

import dataclasses
import json

import mlflow
import pytest
from typer.testing import CliRunner

from lorag.cli import app
from lorag.config import load_params
from lorag.drift.querylog import read, suppressed
from lorag.drift.signals import docs_unindexed, retrieval_health
from lorag.reindex.run import run_reindex
from lorag.retrieval.search import search


def test_search_logs_queries_and_signals_follow_the_index(make_project, shared_embedding_cache):
    root = make_project({"embedding": {"cache_path": str(shared_embedding_cache)}})
    params = load_params(root / "params.yaml")
    assert docs_unindexed(params).value == 3  # nothing published yet: every document is knowledge missing
    run_reindex(params)
    assert docs_unindexed(params).value == 0

    hits = search(params, "how do I install lorag", top_k=2)
    off = load_params(root / "params.yaml", ["monitoring.query_log=false"])
    search(off, "this one is not logged", top_k=2)
    with suppressed():  # an evaluation's question set is not user traffic
        search(params, "neither is this one", top_k=2)
    log = read(params.monitoring.query_log_path)
    assert [q.query for q in log] == ["how do I install lorag"]
    assert log[0].hits == 2 and log[0].top_chunk == hits[0].chunk_id and log[0].mode == "hybrid"
    assert set(json.loads(params.monitoring.query_log_path.read_text().splitlines()[0])) == {
        "ts", "mode", "query", "hits", "top_chunk", "top_score", "collection"}  # nothing else (no params, no env)

    health = retrieval_health(params, log)
    assert health.known and health.detail["judged"] == 1
    strict = load_params(root / "params.yaml", ["monitoring.weak_score=0.99"])
    assert retrieval_health(strict, log).value == 1.0  # a best hit under the floor is weak

    (params.corpus.docs_dir / "intro.md").write_text("# Intro\n\nRewritten: the index no longer matches.\n")
    changed = docs_unindexed(params)
    assert changed.value == 1 and changed.detail["modified"] == 1


def test_lorag_drift_prints_signals_and_decision_and_records_nothing(make_project, shared_embedding_cache):
    root = make_project({"embedding": {"cache_path": str(shared_embedding_cache)}})
    result = CliRunner().invoke(app, ["drift", "--params", str(root / "params.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["wants"] == ["reindex"] and out["action"] == "nothing"  # 1 of 3 checks: the N-of-M rule waits
    assert out["signals"]["answer_quality"]["missing"] == "no champion yet"
    assert out["signals"]["query_drift"]["value"] is None and "0 queries logged" in out["signals"]["query_drift"]["missing"]
    params = load_params(root / "params.yaml")
    exp = mlflow.MlflowClient(params.tracking_uri).get_experiment_by_name(params.monitoring.experiment)
    assert exp is None or not mlflow.MlflowClient(params.tracking_uri).search_runs([exp.experiment_id])


def test_champion_signals_corpus_change_new_data_and_answer_quality_reason(make_project, shared_embedding_cache):
    """A champion registered on the current corpus (its docs revision in the DVC cache, 4 training examples):
    one of three documents edited is a corpus change of 1/3; 6 validated examples now are 2 new; its missing
    evaluation is named as the reason, not a 0."""
    from lorag.drift.signals import answer_quality, corpus_change, new_data
    from lorag.tracking import configure_mlflow
    from lorag.tracking.monitor import champion_facts

    root = make_project({"embedding": {"cache_path": str(shared_embedding_cache)}})
    params = load_params(root / "params.yaml")
    assert champion_facts(params) is None and corpus_change(params, None).missing.startswith("no champion")
    docs_rev = run_reindex(params).summary()["data_rev"]
    client = mlflow.MlflowClient(params.tracking_uri)
    run = client.create_run(configure_mlflow(params, params.mlflow.train_experiment))
    client.log_metric(run.info.run_id, "examples", 4)
    name = params.mlflow.registered_model
    client.create_registered_model(name)
    mv = client.create_model_version(name, f"runs:/{run.info.run_id}/adapter", run_id=run.info.run_id,
                                     tags={"lorag.index_data_rev": docs_rev, "lorag.train_run_id": run.info.run_id,
                                           "lorag.examples_data_rev": "none"})
    client.set_registered_model_alias(name, "champion", mv.version)

    champion = champion_facts(params)
    assert champion.version == str(mv.version) and champion.docs_rev == docs_rev and champion.examples == 4
    assert corpus_change(params, champion).value == 0.0
    (params.corpus.docs_dir / "notes.txt").write_text("Plain text notes, rewritten after the champion was trained.\n")
    changed = corpus_change(params, champion)
    assert changed.value == pytest.approx(1 / 3) and changed.detail["modified"] == 1

    params.examples.clean_dir.mkdir(parents=True)
    (params.examples.clean_dir / "train.jsonl").write_text("".join('{"x": %d}\n' % i for i in range(6)))
    assert new_data(params, champion).value == 2

    quality = answer_quality(params, champion)
    assert not quality.known and "evaluation" in quality.missing

    # An approval releases a version into promotion.released_model, where `champion` lives from then on.
    from lorag.tracking.registry import release_copy

    released = client.create_model_version(name, f"runs:/{run.info.run_id}/adapter", run_id=run.info.run_id,
                                           tags={"lorag.index_data_rev": "rev-of-v2", "lorag.train_run_id":
                                                 run.info.run_id})
    client.set_registered_model_alias(params.promotion.released_model, "champion",
                                      release_copy(params, client, str(released.version)))
    champion = champion_facts(params)
    assert (champion.version, champion.docs_rev) == (str(released.version), "rev-of-v2")
    at_rev = dataclasses.replace(champion, docs_rev=docs_rev)  # a docs revision this project's DVC cache holds
    assert corpus_change(params, at_rev).detail["chunks_missing"] == "the champion's release froze no index"

    # Its release froze the published index: chunk texts are compared with it (the edit above is not indexed yet).
    from lorag.promotion.index_release import freeze_index

    frozen = freeze_index(params, str(released.version))["index_collection"]
    released_version = client.get_model_version_by_alias(params.promotion.released_model, "champion").version
    client.set_model_version_tag(params.promotion.released_model, released_version,
                                 "lorag.release.index_collection", frozen)
    champion = champion_facts(params)
    assert champion.index_collection == frozen
    params.corpus.docs_dir.joinpath("notes.txt").write_text("Plain text notes.\n\nRewritten after the release.\n")
    before = corpus_change(params, dataclasses.replace(champion, docs_rev=docs_rev)).detail
    assert (before["chunks_added"], before["chunks_removed"], before["chunks_changed_share"]) == (0, 0, 0.0)
    run_reindex(params)
    after = corpus_change(params, dataclasses.replace(champion, docs_rev=docs_rev)).detail
    assert after["chunks_added"] >= 1 and after["chunks_removed"] >= 1
    assert 0 < after["chunks_changed_share"] < 1
