"""The citation metric and the demo-model rule, on hand-made inputs (no model needed)."""

from __future__ import annotations

from pathlib import Path

from lorag.config import load_params
from lorag.evaluation.adapter_eval import check_citations, citation_sample
from lorag.answer.format import Passage, format_cited_answer, format_context
from lorag.retrain.base_model import demo_model_dir
from lorag.training.examples import Example

GOLD = Passage("hives/inspect.md", "Inspecting > Summer", "Inspect every 7 to 9 days in summer.")
OTHER = Passage("harvest/extract.md", "Extracting", "Extract honey when frames are capped.")


def _example(**kw) -> Example:
    base = dict(id="q1", instruction="How often in summer?", response="", context=format_context([OTHER, GOLD]),
                sources=[GOLD.doc_id])
    return Example(**{**base, **kw})


def test_gold_citation_in_context_scores() -> None:
    out = format_cited_answer("Every 7 to 9 days.", [(2, GOLD)])
    assert check_citations(out, _example()) == {"cited": [2], "has_sources": True, "in_context": True, "gold": True}


def test_wrong_or_missing_citations_do_not_score() -> None:
    wrong = check_citations(format_cited_answer("Every week.", [(1, OTHER)]), _example())
    assert wrong["in_context"] and not wrong["gold"]
    outside = check_citations("Every week.\n\nSources:\n[7] hives/inspect.md > Inspecting > Summer", _example())
    assert outside["cited"] == [7] and not outside["in_context"] and not outside["gold"]
    none = check_citations("Every week.", _example())
    assert none == {"cited": [], "has_sources": False, "in_context": False, "gold": False}


def test_citation_sample_is_fixed_and_needs_context_and_sources() -> None:
    examples = [_example(id="q3"), _example(id="q1"), _example(id="q2", context=None), _example(id="q0", sources=[])]
    assert [e.id for e in citation_sample(examples, 5)] == ["q1", "q3"]
    assert [e.id for e in citation_sample(list(reversed(examples)), 1)] == ["q1"]


def test_demo_model_is_built_only_for_explicit_paths_inside_the_project(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("train:\n  base_model: .lorag/models/tiny\n")
    assert demo_model_dir(load_params(tmp_path)) == tmp_path / ".lorag/models/tiny"
    assert demo_model_dir(load_params(tmp_path, ["train.base_model=Qwen/Qwen2.5-0.5B-Instruct"])) is None
    assert demo_model_dir(load_params(tmp_path, [f"train.base_model={tmp_path.parent / 'elsewhere'}"])) is None
    mine = tmp_path / "models" / "mine"
    mine.mkdir(parents=True)
    (mine / "config.json").write_text("{}")  # a user's model: never overwritten
    assert demo_model_dir(load_params(tmp_path, ["train.base_model=./models/mine"])) is None
