"""The grounded-example builder, its formatting functions and the split by source document."""

from __future__ import annotations

import json
import re

import pytest

from lorag.answer.format import (
    Passage,
    format_cited_answer,
    format_context,
    parse_citations,
    parse_context,
)
from lorag.answer.format import citation as source_label
from lorag.training.examples import (
    Example,
    GoldPassageMissing,
    Question,
    build_grounded_examples,
    read_examples,
    split_by_source,
    write_examples,
    write_split,
)

PASSAGES = [
    Passage("hives/smoke.md", "Smoker > Fuel", "Burn pine needles or burlap; the smoke should be cool and white."),
    Passage("hives/smoke.md", "Smoker > When", "Smoke the entrance, wait a minute, then open the hive."),
    Passage("swarms/signs.md", "Swarms > Signs", "Queen cells along the bottom bars mean a swarm is near."),
    Passage("swarms/catch.md", "", "Shake the cluster into a box and leave it near the branch until dusk."),
    Passage("honey/harvest.md", "Harvest", "Take frames that are at least 80 percent capped."),
]


def overlap_retrieve(query: str, k: int) -> list[Passage]:
    """Word-overlap retrieval over PASSAGES: real ranking, deterministic, ties broken by position."""
    words = set(re.findall(r"\w+", query.lower()))
    scored = [(len(words & set(re.findall(r"\w+", p.text.lower()))), -i, p) for i, p in enumerate(PASSAGES)]
    return [p for _, _, p in sorted(scored, key=lambda t: (t[0], t[1]), reverse=True)[:k]]


def test_format_context_numbers_blocks_with_their_source() -> None:
    context = format_context(PASSAGES[:2] + [PASSAGES[3]])
    assert context.startswith("[1] hives/smoke.md > Smoker > Fuel\nBurn pine needles")
    assert "\n\n[3] swarms/catch.md\nShake the cluster" in context
    assert parse_context(context) == {1: "hives/smoke.md > Smoker > Fuel", 2: "hives/smoke.md > Smoker > When",
                                      3: "swarms/catch.md"}


def test_cited_answer_round_trips_to_context_blocks() -> None:
    passages = PASSAGES[:4]
    context = format_context(passages)
    response = format_cited_answer("Look for queen cells.", [(3, passages[2]), (1, passages[0])])
    assert response.startswith("Look for queen cells.\n\nSources:\n[3] swarms/signs.md > Swarms > Signs")
    blocks = parse_context(context)
    assert parse_citations(response) == [3, 1]
    assert all(blocks[n] == source_label(passages[n - 1]) for n in parse_citations(response))
    assert parse_citations("No sources here [2].") == []
    assert format_cited_answer(" plain ", []) == "plain"


def test_builder_cites_gold_doc_when_retrieved() -> None:
    q = Question("q1", "Which queen cells mean a swarm?", "Queen cells on the bottom bars.", "swarms/signs.md")
    [ex] = build_grounded_examples([q], overlap_retrieve, k=3)
    assert (ex.id, ex.instruction, ex.sources) == ("q1", q.question, ["swarms/signs.md"])
    assert ex.response.startswith("Queen cells on the bottom bars.")
    blocks = parse_context(ex.context or "")
    assert len(blocks) == 3
    cited = parse_citations(ex.response)
    assert len(cited) == 1 and blocks[cited[0]].startswith("swarms/signs.md")


def test_builder_adds_gold_passage_when_retrieval_misses_it() -> None:
    # the words of this question only match the smoker passages, so top-2 never holds the harvest doc
    q = Question("q2", "What fuel for the smoker, pine needles?", "Frames 80% capped.", "honey/harvest.md")
    assert all(p.doc_id != "honey/harvest.md" for p in overlap_retrieve(q.question, 2))
    asked: list[tuple[str, str]] = []

    def gold(question: str, doc_id: str) -> Passage | None:
        asked.append((question, doc_id))
        return next(p for p in PASSAGES if p.doc_id == doc_id)

    [ex] = build_grounded_examples([q], overlap_retrieve, k=2, gold_passage=gold)
    assert asked == [(q.question, "honey/harvest.md")]
    blocks = parse_context(ex.context or "")
    assert len(blocks) == 2  # the gold passage replaced the lowest-ranked one; the context did not grow
    [n] = parse_citations(ex.response)
    assert blocks[n] == "honey/harvest.md > Harvest"
    # without a lookup the builder searches deeper with the same retriever
    [deeper] = build_grounded_examples([q], overlap_retrieve, k=2)
    assert parse_context(deeper.context or "")[parse_citations(deeper.response)[0]] == "honey/harvest.md > Harvest"


def test_builder_names_the_question_when_gold_doc_is_nowhere() -> None:
    q = Question("q3", "anything", "answer", "missing/doc.md")
    with pytest.raises(GoldPassageMissing, match="q3.*missing/doc.md"):
        build_grounded_examples([q], overlap_retrieve, k=2)


def _examples(n_docs: int, per_doc: int) -> list[Example]:
    return [Example(f"d{d}-{i}", f"question {d} {i}", "answer", None, [f"doc{d}.md"])
            for d in range(n_docs) for i in range(per_doc)]


def test_split_shares_no_source_document_and_is_deterministic() -> None:
    examples = _examples(10, 3)
    examples.append(Example("bridge", "q", "a", None, ["doc0.md", "doc1.md"]))  # ties doc0 and doc1 together
    train, held = split_by_source(examples, eval_share=0.3, seed=7)
    train_docs = {s for e in train for s in e.sources}
    eval_docs = {s for e in held for s in e.sources}
    assert train_docs.isdisjoint(eval_docs)
    assert len(train) + len(held) == len(examples) and held and train
    assert 2 <= len({s for e in held for s in e.sources}) <= 4  # about 30% of 9 groups
    again = split_by_source(list(reversed(examples)), eval_share=0.3, seed=7)
    assert {e.id for e in again[1]} == {e.id for e in held}
    other = [split_by_source(examples, 0.3, seed)[1] for seed in range(5)]
    assert len({frozenset(e.id for e in h) for h in other}) > 1  # the seed matters


def test_split_refuses_a_single_source() -> None:
    with pytest.raises(ValueError, match="more documents"):
        split_by_source(_examples(1, 4), eval_share=0.2, seed=1)


def test_write_split_round_trips(tmp_path) -> None:
    examples = _examples(3, 1)
    examples[0].context = "[1] doc0.md\nctx ü"
    train_path, eval_path = write_split(examples[:2], examples[2:], tmp_path / "out")
    assert (train_path.name, eval_path.name) == ("train.jsonl", "eval.jsonl")
    assert read_examples(train_path) == (examples[:2], [])
    assert read_examples(eval_path) == (examples[2:], [])


def test_read_examples_reports_every_bad_line(tmp_path) -> None:
    good = Example("a", "q", "r")
    path = write_examples([good], tmp_path / "x.jsonl")
    with path.open("a", encoding="utf-8") as fh:
        fh.write("{not json\n\n")
        fh.write(json.dumps({"id": "b", "instruction": "q"}) + "\n")
        fh.write(json.dumps({"id": "c", "instruction": "q", "response": 3}) + "\n")
        fh.write(json.dumps(["a list"]) + "\n")
    examples, bad = read_examples(path)
    assert examples == [good]
    assert [(b.line_no, b.reason.split(":")[0]) for b in bad] == [
        (2, "malformed JSON"), (4, "missing field(s)"), (5, "wrong type for field(s)"),
        (6, "expected a JSON object, got list"),
    ]
    assert "response" in bad[1].reason and bad[0].raw == "{not json"
