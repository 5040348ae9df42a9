"""Query-drift statistics on synthetic windows with a known shift, and with none."""

from __future__ import annotations

import numpy as np
import pytest

from lorag.drift.querylog import LoggedQuery
from lorag.drift.signals import changed_share, split_windows
from lorag.drift.stats import mmd_test


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_no_shift_is_not_drift_and_a_shift_is():
    rng = np.random.default_rng(7)
    centre = rng.normal(size=384)
    same_a = _unit(centre + rng.normal(scale=1.5, size=(120, 384)))
    same_b = _unit(centre + rng.normal(scale=1.5, size=(60, 384)))
    moved = _unit(centre + rng.normal(scale=1.5, size=(60, 384)) + 0.6 * rng.normal(size=384))
    none = mmd_test(same_a, same_b, permutations=300)
    shift = mmd_test(same_a, moved, permutations=300)
    assert none.p_value > 0.05
    assert shift.p_value < 0.01 and shift.mmd2 > none.mmd2


def test_null_p_values_are_not_biased_low():
    """Under no shift the permutation p-value is ~uniform: at most a few of 20 trials fall under 0.05."""
    rng = np.random.default_rng(3)
    p = [mmd_test(rng.normal(size=(40, 16)), rng.normal(size=(40, 16)), permutations=100, seed=i).p_value
         for i in range(20)]
    assert sum(v < 0.05 for v in p) <= 3


def test_off_topic_queries_drift_with_the_real_embedder():
    from lorag.config import Params
    from lorag.embedding.embedder import load_embedder

    embedder = load_embedder(Params().embedding)
    on = [f"how do I configure the {w} option of the index" for w in
          ("alpha", "top_k", "backend", "batch", "cache", "chunk", "overlap", "remote", "keep_last", "name",
           "threads", "suffix", "quarantine", "encoding", "model", "collection", "alias", "delete", "write", "path")]
    off = [f"best {w} recipe for a family dinner" for w in
           ("pasta", "curry", "soup", "salad", "bread", "cake", "pie", "stew", "rice", "fish",
            "chicken", "tofu", "noodle", "pizza", "taco", "burger", "risotto", "omelette", "dumpling", "pudding")]
    ref = embedder.embed(on[:10] + on[10:])
    same = mmd_test(embedder.embed(on[:10]), embedder.embed(on[10:]), permutations=200)
    drift = mmd_test(ref, embedder.embed(off), permutations=200)
    assert drift.p_value < 0.01
    assert same.p_value > 0.01


def test_windows_split_newest_from_the_ones_before():
    log = [LoggedQuery(float(i), "hybrid", f"q{i}", 1, "c", 1.0, "x") for i in range(50)]
    ref, recent = split_windows(log, reference=15, recent=20)
    assert recent == [f"q{i}" for i in range(30, 50)] and ref == [f"q{i}" for i in range(15, 30)]
    assert split_windows(log[:15], 10, 10) is None  # fewer than 10 per window: no test


@pytest.mark.parametrize(
    ("old", "new", "share"),
    [({"a": "1", "b": "2"}, {"a": "1", "b": "2"}, 0.0),
     ({"a": "1", "b": "2"}, {"a": "1", "b": "3"}, 0.5),
     ({"a": "1"}, {"a": "1", "b": "2", "c": "3", "d": "4"}, 0.75),
     ({}, {}, 0.0)],
)
def test_changed_share(old, new, share):
    assert changed_share(old, new)[0] == pytest.approx(share)
