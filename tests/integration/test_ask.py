"""`lorag ask` end to end on the sample corpus: retrieval into the prompt, the registered adapter, citations
resolved to real passages of the index, invalid numbers flagged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lorag.cli import app
from lorag.config import load_params

pytestmark = pytest.mark.slow


def test_ask_json_uses_the_challenger_and_real_passages(rag_project: Path) -> None:
    from lorag.retrieval.search import citation, search

    question = "What does a full member pay in annual fees?"
    result = CliRunner().invoke(app, ["ask", question, "--json", "--top-k", "3", "--params",
                                      str(rag_project / "params.yaml")])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["model"] == "challenger (version 1)" and answer["rag"] is True
    params = load_params(rag_project / "params.yaml")
    hits = search(params, question, top_k=3)
    assert [p["citation"] for p in answer["passages"]] == [citation(h) for h in hits]
    assert "alias 'champion'" in result.stderr  # the note says why the challenger answered
    for c in answer["citations"]:
        assert c["valid"] == (1 <= c["n"] <= 3)
        if c["valid"]:
            assert c["citation"] == answer["passages"][c["n"] - 1]["citation"]


def test_citations_resolve_to_passages_or_are_flagged(rag_project: Path) -> None:
    from lorag.answer.ask import resolve_citations
    from lorag.answer.format import citation
    from lorag.retrieval.search import search

    params = load_params(rag_project / "params.yaml")
    hits = search(params, "When is the equipment library staffed?", top_k=2)
    output = f"On Wednesdays.\n\nSources:\n[1] {citation(hits[0])}\n[7] made/up.md > Nowhere"
    one, seven = resolve_citations(output, hits)
    assert (one.n, one.valid, one.citation, one.doc_id) == (1, True, citation(hits[0]), hits[0].doc_id)
    assert one.text == hits[0].text
    assert (seven.n, seven.valid, seven.citation) == (7, False, None)


def test_ask_without_rag_and_a_missing_champion(rag_project: Path) -> None:
    runner = CliRunner()
    p = str(rag_project / "params.yaml")
    result = runner.invoke(app, ["ask", "How much is the fee?", "--no-rag", "--model", "base", "--json", "--params", p])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["passages"] == [] and answer["model"] == "base model (no adapter)"
    assert all(not c["valid"] for c in answer["citations"])
    missing = runner.invoke(app, ["ask", "How much is the fee?", "--model", "champion", "--params", p])
    assert missing.exit_code == 1 and "lorag approve" in missing.stderr and "lorag train --register" in missing.stderr
