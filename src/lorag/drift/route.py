"""Routing: which track the signals ask for, and the N-of-M window that keeps one noisy check from acting.

Pure: no I/O, no clock. A check *wants* a track when its signals say so:
  re-index  knowledge changed (documents differ from the published index) or missing (too many weak/empty
            best hits: users ask what the index cannot answer);
  retrain   new validated examples, the corpus moved past a share since the champion was trained, or, while
            retrieval holds, behaviour got worse (answer quality under its floor) or the questions moved
            (query drift). With weak retrieval those two are a knowledge gap, and re-indexing comes first.
A track *runs* when at least `required` (N) of the last `window` (M) checks wanted it, counting only checks
after the last one that ran it, so one run answers one episode instead of firing at every later check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorag.config import MonitoringParams
    from lorag.drift.signals import Signal

TRACKS = ("reindex", "retrain")


@dataclass(frozen=True)
class Check:
    """One earlier check, as the window needs it: what it wanted and what it ran."""

    wants: frozenset[str]
    acted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    action: str  # nothing | reindex | retrain | both
    wants: frozenset[str]  # what this check alone asked for
    votes: dict[str, int]  # per track: checks in the window that wanted it (this one included)
    rationale: list[str] = field(default_factory=list)

    @property
    def tracks(self) -> frozenset[str]:
        return frozenset(TRACKS) if self.action == "both" else frozenset() if self.action == "nothing" else frozenset({self.action})

    def as_check(self) -> Check:
        return Check(self.wants, self.tracks)


def wants(signals: Mapping[str, Signal], t: MonitoringParams) -> tuple[frozenset[str], list[str]]:
    """What the signals of one check ask for, with a reason per wish (and per missing signal)."""
    out: set[str] = set()
    why: list[str] = []

    def known(name: str) -> Signal | None:
        s = signals.get(name)
        if s is None or not s.known:
            why.append(f"{name}: missing ({s.missing if s is not None else 'not computed'})")
            return None
        return s

    unindexed, health = known("docs_unindexed"), known("retrieval_health")
    if unindexed is not None and unindexed.value > 0:
        out.add("reindex")
        why.append(f"re-index: {unindexed.value:.0f} document(s) differ from the published index")
    weak = health is not None and health.value > t.max_weak_share
    if weak:
        out.add("reindex")
        why.append(f"re-index: {health.value:.0%} of recent best hits weak or empty (> {t.max_weak_share:.0%})")
    drift = known("query_drift")
    drifted = drift is not None and drift.detail.get("p_value", 1.0) < t.drift_p_value
    if drifted and weak:
        why.append(f"query drift (p={drift.detail['p_value']:.3g}) with weak retrieval: a knowledge gap, re-index first")
    elif drifted:
        out.add("retrain")
        why.append(f"retrain: queries drifted (MMD p={drift.detail['p_value']:.3g} < {t.drift_p_value}) while retrieval holds")
    quality, corpus, new = known("answer_quality"), known("corpus_change"), known("new_data")
    state = None
    if quality is not None and quality.value < t.min_answer_quality:
        state = f"answer quality {quality.value:.3f} < floor {t.min_answer_quality}"
    elif quality is not None and quality.detail.get("drop", 0.0) > t.max_quality_drop:
        state = (f"answer quality fell {quality.detail['drop']:.3f} below the champion's recorded value "
                 f"(> {t.max_quality_drop})")
    if state is not None:
        if weak:
            why.append(f"{state} but retrieval is weak: re-index first")
        else:
            out.add("retrain")
            why.append(f"retrain: {state} while retrieval holds")
    if corpus is not None and corpus.value >= t.corpus_change_share:
        out.add("retrain")
        why.append(f"retrain: {corpus.value:.0%} of documents changed since the champion's docs revision")
    if new is not None and new.value >= t.new_examples:
        out.add("retrain")
        why.append(f"retrain: {new.value:.0f} new validated examples (>= {t.new_examples})")
    return frozenset(out), why


def route(signals: Mapping[str, Signal], history: Sequence[Check], t: MonitoringParams) -> Decision:
    """Decide nothing / reindex / retrain / both from this check's signals and the earlier checks (oldest first)."""
    wanted, rationale = wants(signals, t)
    window = [*history[-(t.window - 1) :], Check(wanted)] if t.window > 1 else [Check(wanted)]
    votes: dict[str, int] = {}
    run: list[str] = []
    for track in TRACKS:
        since = window
        for i, check in enumerate(window):
            if track in check.acted:
                since = window[i + 1 :]  # the episode before the last run of this track is answered
        votes[track] = sum(1 for c in since if track in c.wants)
        if votes[track] >= t.required:
            run.append(track)
            rationale.append(f"{track}: {votes[track]} of the last {len(window)} checks asked (needs {t.required})")
        elif track in wanted:
            rationale.append(f"{track}: wanted, but only {votes[track]} of the last {len(window)} checks "
                             f"(needs {t.required}): waiting")
    action = "both" if len(run) == 2 else run[0] if run else "nothing"
    if action == "nothing" and not wanted:
        rationale.append("nothing: no signal crossed its threshold")
    return Decision(action, wanted, votes, rationale)
