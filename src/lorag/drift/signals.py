"""The drift signals. Each is a number with its evidence, or missing with the reason (NaN, never 0).

    query_drift       MMD^2 of recent query embeddings vs the window before them (p-value in detail)
    retrieval_health  share of recent queries whose best hit is empty or weak (cosine under weak_score)
    docs_unindexed    documents that differ from what the published index holds (added, removed, modified)
    corpus_change     share of documents changed since the champion's docs revision (and of chunk texts, against
                      the index frozen at its release, in detail)
    answer_quality    the champion's answer metric from its evaluation (the evaluation matrix contract)
    new_data          validated training examples added since the champion's examples
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lorag.drift.querylog import LoggedQuery, read

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.drift.facts import ChampionFacts

NAN = float("nan")


@dataclass(frozen=True)
class Signal:
    name: str
    value: float  # NaN when missing
    detail: dict[str, Any] = field(default_factory=dict)
    missing: str | None = None  # why it could not be computed

    @classmethod
    def absent(cls, name: str, reason: str) -> Signal:
        return cls(name, NAN, {}, reason)

    @property
    def known(self) -> bool:
        return self.missing is None and not math.isnan(self.value)


def compute_signals(params: Params, champion: ChampionFacts | None) -> dict[str, Signal]:
    """All six signals for the project as it is now; `champion` from lorag.tracking.monitor.champion_facts."""
    log = read(params.monitoring.query_log_path)
    recent = log[-params.monitoring.recent_queries :]
    out = [query_drift(params, log), retrieval_health(params, recent), docs_unindexed(params),
           corpus_change(params, champion), answer_quality(params, champion), new_data(params, champion)]
    return {s.name: s for s in out}


def split_windows(log: list[LoggedQuery], reference: int, recent: int) -> tuple[list[str], list[str]] | None:
    """(reference, recent) query texts: the newest `recent` queries and up to `reference` just before them.
    None when the log is too short for a test (fewer than 10 per window)."""
    n_recent = min(recent, len(log) // 2)
    if n_recent < 10:
        return None
    before = log[: len(log) - n_recent][-reference:]
    return [q.query for q in before], [q.query for q in log[-n_recent:]]


def query_drift(params: Params, log: list[LoggedQuery]) -> Signal:
    from lorag.drift.stats import mmd_test
    from lorag.embedding.embedder import load_embedder

    m = params.monitoring
    windows = split_windows(log, m.reference_queries, m.recent_queries)
    if windows is None:
        return Signal.absent("query_drift", f"{len(log)} queries logged; the test needs at least 20 "
                             f"(monitoring.query_log is {'on' if m.query_log else 'off'})")
    embedder = load_embedder(params.embedding, root=params.root)
    test = mmd_test(embedder.embed(windows[0]), embedder.embed(windows[1]), m.permutations)
    return Signal("query_drift", test.mmd2, {"p_value": test.p_value, "n_reference": test.n_reference,
                                             "n_recent": test.n_recent, "bandwidth": test.bandwidth})


def retrieval_health(params: Params, recent: list[LoggedQuery]) -> Signal:
    """Weak = no hit, or the best hit's stored vector has cosine < weak_score with the query (scores of hybrid
    search are relative ranks, so the cosine is recomputed from the stored vector, by id)."""
    import numpy as np

    from lorag.embedding.embedder import load_embedder
    from lorag.index.stores import open_store

    if not recent:
        return Signal.absent("retrieval_health", "no queries logged yet")
    embedder = load_embedder(params.embedding, root=params.root)
    with open_store(params) as store:
        collection = store.get_alias(params.index.name)
        ids = [q.top_chunk for q in recent if q.top_chunk]
        rows = store.fetch_rows(collection, ids) if collection and ids else {}
    vectors = embedder.embed([q.query for q in recent])
    weak = empty = gone = 0
    for q, vector in zip(recent, vectors):
        if not q.hits or not q.top_chunk:
            empty += 1
        elif q.top_chunk not in rows:
            gone += 1  # its chunk was re-indexed away since: not evidence either way
        elif float(np.dot(vector, np.asarray(rows[q.top_chunk].vector))) < params.monitoring.weak_score:
            weak += 1
    judged = len(recent) - gone
    if judged == 0:
        return Signal.absent("retrieval_health", "every logged best hit was re-indexed away since")
    return Signal("retrieval_health", (weak + empty) / judged, {"weak": weak, "empty": empty, "judged": judged})


def changed_share(old: dict[str, str], new: dict[str, str]) -> tuple[float, dict[str, int]]:
    """Share of documents added, removed or modified between two manifests (over their union)."""
    added, removed = len(new.keys() - old.keys()), len(old.keys() - new.keys())
    modified = sum(1 for k in old.keys() & new.keys() if old[k] != new[k])
    union = len(old.keys() | new.keys())
    return ((added + removed + modified) / union if union else 0.0,
            {"added": added, "removed": removed, "modified": modified, "documents": len(new)})


def _current_manifest(params: Params) -> dict[str, str]:
    from lorag.versioning.dvc_repo import hash_manifest

    return hash_manifest(params.corpus.docs_dir, params.corpus.suffixes)


def docs_unindexed(params: Params) -> Signal:
    from lorag.index.stores import published_state

    if not params.corpus.docs_dir.is_dir():
        return Signal.absent("docs_unindexed", f"corpus.docs_dir {params.corpus.docs_dir} does not exist")
    state = published_state(params)
    current = _current_manifest(params)
    if state is None:
        return Signal("docs_unindexed", float(len(current)), {"published": False, "documents": len(current)})
    share, counts = changed_share(state.get("manifest") or {}, current)
    return Signal("docs_unindexed", float(counts["added"] + counts["removed"] + counts["modified"]),
                  {**counts, "share": share, "published_data_rev": state.get("data_rev")})


def corpus_change(params: Params, champion: ChampionFacts | None) -> Signal:
    from lorag.versioning.dvc_repo import revision_manifest

    if champion is None:
        return Signal.absent("corpus_change", "no champion yet: nothing was trained on an earlier corpus")
    if not champion.docs_rev:
        return Signal.absent("corpus_change", f"champion v{champion.version} records no docs revision")
    old = revision_manifest(params, champion.docs_rev)
    if old is None:
        return Signal.absent("corpus_change", f"docs revision {champion.docs_rev[:12]} is not in the local DVC "
                             "cache: run `dvc pull` (or `dvc fetch`) for it")
    wanted = {s.lower() for s in params.corpus.suffixes}
    old = {k: v for k, v in old.items() if ("." + k.rsplit(".", 1)[-1].lower()) in wanted}
    share, counts = changed_share(old, _current_manifest(params))
    return Signal("corpus_change", share, {**counts, "champion_docs_rev": champion.docs_rev,
                                           **chunk_change(params, champion.index_collection)})


def chunk_change(params: Params, frozen: str | None) -> dict[str, Any]:
    """Chunk texts added and removed between the champion's frozen index and the published one, and their share
    of the union (a document edit that touches one paragraph moves one chunk, not the whole document)."""
    from collections import Counter

    from lorag.index.stores import open_store, published_state

    state = published_state(params)
    if frozen is None or state is None:
        why = "the champion's release froze no index" if frozen is None else "nothing is published"
        return {"chunks_missing": why}
    with open_store(params) as store:
        if frozen not in store.list_collections():
            return {"chunks_missing": f"the champion's frozen index {frozen} is gone"}
        old = Counter(m.text_hash for m in store.fetch_meta(frozen).values())
        new = Counter(m.text_hash for m in store.fetch_meta(state["collection"]).values())
    added, removed, union = sum((new - old).values()), sum((old - new).values()), sum((old | new).values())
    return {"chunks_added": added, "chunks_removed": removed, "chunks": sum(new.values()),
            "chunks_changed_share": (added + removed) / union if union else 0.0}


def answer_quality(params: Params, champion: ChampionFacts | None) -> Signal:
    """The champion's answer metric: re-run on the frozen question set against the index as it is now when
    monitoring.rerun_evaluation is on (generation: minutes on a real model), else as its evaluation recorded it.
    The drop from the recorded value is in the detail either way it can be computed."""
    if champion is None:
        return Signal.absent("answer_quality", "no champion yet")
    metric = params.monitoring.answer_metric
    recorded = champion.evaluation.get(metric, NAN)
    if params.monitoring.rerun_evaluation:
        try:
            value = rerun_quality(params, champion.version)
        except Exception as exc:  # noqa: BLE001 - any failure of the re-run is this signal's missing reason
            return Signal.absent("answer_quality", f"re-running the champion's evaluation failed: {exc}")
        source = "re-run"
    elif champion.evaluation_error:
        return Signal.absent("answer_quality", champion.evaluation_error)
    else:
        value, source = recorded, "recorded"
    if math.isnan(value):
        return Signal.absent("answer_quality", f"{metric} is NaN or absent in the champion's {source} evaluation")
    detail: dict[str, Any] = {"metric": metric, "version": champion.version, "source": source}
    if not math.isnan(recorded):
        detail.update(recorded=recorded, drop=recorded - value)
    return Signal("answer_quality", float(value), detail)


def rerun_quality(params: Params, version: str) -> float:
    """`monitoring.answer_metric` of `version` evaluated now (evaluation matrix, no files or MLflow written)."""
    from lorag.evaluation.matrix import evaluate_matrix
    from lorag.evaluation.questions import load_question_set
    from lorag.tracking.adapters import resolve_model

    matrix = evaluate_matrix(params, load_question_set(params), resolve_model(params, str(version)))
    return float(matrix.metrics().get(params.monitoring.answer_metric, NAN))


def new_data(params: Params, champion: ChampionFacts | None) -> Signal:
    from lorag.versioning.dvc_repo import recorded_revision

    if champion is None:
        return Signal.absent("new_data", "no champion yet")
    train = params.examples.clean_dir / "train.jsonl"
    if not train.is_file():
        return Signal.absent("new_data", f"no validated examples at {train}: run `lorag train` (it validates)")
    now = sum(1 for line in train.read_text(encoding="utf-8").splitlines() if line.strip())
    rev = recorded_revision(params, params.examples.dir)
    if champion.examples is None:
        return Signal.absent("new_data", f"champion v{champion.version}'s training run records no example count")
    return Signal("new_data", float(max(now - champion.examples, 0)),
                  {"validated_now": now, "champion_examples": champion.examples, "examples_rev": rev,
                   "champion_examples_rev": champion.examples_rev})
