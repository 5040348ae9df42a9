"""The Great Expectations suite that guards what the adapter trains on (train.jsonl / eval.jsonl).

One row per JSONL line of each split. Rules that span rows (duplicates, leakage) and the token count are
computed here as columns first, because they need the real tokenizer and the other split; GX then checks every
column, so one suite (and one report format) covers all rules. Later duplicates fail, not the first copy, and
leakage fails the eval row: dropping it keeps the training data whole and the held-out set honest.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lorag.answer.format import format_prompt
from lorag.training.examples import BadLine, Example, chat_messages, read_numbered_examples
from lorag.validation.documents import ValidationFailed

SPLITS = ("train", "eval")
# rule -> its flag column in the table (must be False); "<flag>_detail" says why a row failed
RULES: dict[str, str] = {
    "schema": "schema_bad",
    "unique_id": "id_repeat",
    "non_empty": "empty",
    "max_seq_len": "too_long",
    "duplicate_prompt": "prompt_repeat",
    "leakage_prompt": "prompt_leak",
    "leakage_source": "source_leak",
}


class ExamplesValidationFailed(ValidationFailed):
    """More examples failed than examples.max_failure_ratio allows; nothing was trained.

    A ValidationFailed (the documents suite's error), so a caller that stops on either suite catches one class.
    """


@dataclass(frozen=True)
class Failure:
    split: str
    id: str
    rule: str
    detail: str
    line_no: int


@dataclass
class ExamplesReport:
    total: int
    passed: dict[str, list[str]]  # split -> ids of the examples that passed every rule
    failures: list[Failure]
    max_failure_ratio: float
    max_seq_len: int
    failed_lines: dict[str, list[int]] = field(default_factory=dict)  # split -> failing line numbers

    @property
    def failure_ratio(self) -> float:
        failed = sum(len(v) for v in self.failed_lines.values())
        return failed / self.total if self.total else 0.0

    @property
    def ok(self) -> bool:
        return self.failure_ratio <= self.max_failure_ratio

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for f in self.failures:
            counts[f.rule] = counts.get(f.rule, 0) + 1
        rules = ", ".join(f"{r}: {n}" for r, n in sorted(counts.items())) or "none"
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"examples {verdict}: {self.total - sum(map(len, self.failed_lines.values()))}/{self.total} passed, "
            f"failure ratio {self.failure_ratio:.3f} (max {self.max_failure_ratio}); failures by rule: {rules}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "failure_ratio": self.failure_ratio,
            "max_failure_ratio": self.max_failure_ratio,
            "max_seq_len": self.max_seq_len,
            "ok": self.ok,
            "summary": self.summary(),
            "passed": self.passed,
            "failures": [asdict(f) for f in self.failures],
        }


# ---------------------------------------------------------------- measuring


def count_tokens(example: Example, tokenizer: Any) -> int:
    """Tokens of the whole example as the trainer sees it: chat template if the tokenizer has one."""
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(chat_messages(example), tokenize=True)
        # transformers 5 returns a BatchEncoding (dict) by default; older versions a plain list
        ids = ids["input_ids"] if isinstance(ids, Mapping) else ids
        return len(ids)
    text = format_prompt(example.instruction, example.context) + "\n\n" + example.response
    return len(tokenizer(text, add_special_tokens=True)["input_ids"])


def _bad_row(split: str, bad: BadLine) -> dict[str, Any]:
    try:
        obj = json.loads(bad.raw)
        rid = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None
    except json.JSONDecodeError:
        rid = None
    return {"split": split, "id": rid or f"line-{bad.line_no}", "line_no": bad.line_no, "schema_bad": True,
            "schema_bad_detail": bad.reason}


def _example_row(split: str, line_no: int, ex: Example, tokenizer: Any, max_seq_len: int) -> dict[str, Any]:
    empty = [name for name, value in (("instruction", ex.instruction), ("response", ex.response)) if not value.strip()]
    n_tokens = count_tokens(ex, tokenizer)
    return {
        "split": split, "id": ex.id, "line_no": line_no, "schema_bad": False,
        "empty": bool(empty), "empty_detail": f"empty {' and '.join(empty)}",
        "too_long": n_tokens > max_seq_len, "too_long_detail": f"{n_tokens} tokens > train.max_seq_len {max_seq_len}",
        "prompt": format_prompt(ex.instruction, ex.context), "sources": tuple(ex.sources),
    }


def _flag_repeats(rows: list[dict[str, Any]]) -> None:
    """Within a split: a repeated id or prompt fails every copy after the first."""
    for split in SPLITS:
        seen_id: dict[str, int] = {}
        seen_prompt: dict[str, str] = {}
        for row in (r for r in rows if r["split"] == split and not r["schema_bad"]):
            first = seen_id.setdefault(row["id"], row["line_no"])
            row["id_repeat"] = first != row["line_no"]
            row["id_repeat_detail"] = f"id already used on line {first}"
            owner = seen_prompt.setdefault(row["prompt"], row["id"])
            row["prompt_repeat"] = row["id_repeat"] is False and owner != row["id"]
            row["prompt_repeat_detail"] = f"same instruction+context as id {owner!r}"


def _flag_leakage(rows: list[dict[str, Any]]) -> None:
    """Eval rows whose prompt or source document also appears in train."""
    train = [r for r in rows if r["split"] == "train" and not r["schema_bad"]]
    train_prompts = {r["prompt"]: r["id"] for r in train}
    train_sources = {s for r in train for s in r["sources"]}
    for row in (r for r in rows if not r["schema_bad"]):
        held = row["split"] != "train"
        owner = train_prompts.get(row["prompt"])
        row["prompt_leak"] = held and owner is not None
        row["prompt_leak_detail"] = f"same prompt as train id {owner!r}"
        shared = sorted(set(row["sources"]) & train_sources)
        row["source_leak"] = held and bool(shared)
        row["source_leak_detail"] = f"source document(s) also in train: {', '.join(shared)}"


def build_table(
    splits: Mapping[str, tuple[list[tuple[int, Example]], list[BadLine]]], tokenizer: Any, max_seq_len: int
) -> Any:
    """The pandas table the suite validates: one row per line, a bool flag and a detail column per rule."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for split, (examples, bad) in splits.items():
        rows += [_bad_row(split, b) for b in bad]
        rows += [_example_row(split, n, ex, tokenizer, max_seq_len) for n, ex in examples]
    _flag_repeats(rows)
    _flag_leakage(rows)
    table = pd.DataFrame(rows, columns=["split", "id", "line_no", *[c for flag in RULES.values()
                                                                    for c in (flag, f"{flag}_detail")]])
    for flag in RULES.values():
        # a schema-bad row has no fields to check the other rules on: it fails schema only
        table[flag] = table[flag].map(lambda v: v is True)
    table["row"] = range(len(table))
    return table


# ---------------------------------------------------------------- the suite


@functools.cache
def _definition() -> Any:
    """The GX validation definition, built once per process (importing GX alone takes ~3 s).

    It has no thresholds: every limit was applied when the flag columns were computed.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = context.data_sources.add_pandas("lorag_examples").add_dataframe_asset("examples")
    suite = context.suites.add(gx.ExpectationSuite(name="lorag_examples"))
    for rule, flag in RULES.items():
        suite.add_expectation(
            gx.expectations.ExpectColumnValuesToBeInSet(column=flag, value_set=[False], meta={"rule": rule})
        )
    return context.validation_definitions.add(
        gx.ValidationDefinition(name="lorag_examples", data=batch.add_batch_definition_whole_dataframe("all"),
                                suite=suite)
    )


def _run_suite(table: Any) -> dict[str, list[int]]:
    """Validate the table with the GX suite; rule -> table rows (`row`) that failed it."""
    result = _definition().run(
        batch_parameters={"dataframe": table},
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["row"]},
    )
    failed: dict[str, list[int]] = {}
    for item in result.results:
        if item.exception_info and item.exception_info.get("raised_exception"):
            raise RuntimeError(f"examples suite could not run {item.expectation_config.meta}: "
                               f"{item.exception_info.get('exception_message')}")
        rows = [int(u["row"]) for u in item.result.get("unexpected_index_list") or []]
        failed[item.expectation_config.meta["rule"]] = rows
    return failed


def validate_examples(
    paths: Mapping[str, Path], tokenizer: Any, *, max_seq_len: int, max_failure_ratio: float
) -> ExamplesReport:
    """Validate the split files (`{"train": path, "eval": path}`) against every rule; never raises on bad data.

    `tokenizer` is the base model's real Hugging Face tokenizer: the length rule counts what training sees.
    """
    unknown = sorted(set(paths) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split name(s) {unknown}: use {', '.join(SPLITS)}")
    loaded = {split: read_numbered_examples(path) for split, path in paths.items()}
    table = build_table(loaded, tokenizer, max_seq_len)
    failed_rows = _run_suite(table) if len(table) else {}
    records = table.to_dict("records")
    failures = [
        Failure(records[r]["split"], records[r]["id"], rule, records[r][f"{RULES[rule]}_detail"],
                int(records[r]["line_no"]))
        for rule, rows in failed_rows.items() for r in rows
    ]
    failed_lines: dict[str, list[int]] = {split: [] for split in paths}
    for split, line_no in sorted({(f.split, f.line_no) for f in failures}):
        failed_lines[split].append(line_no)
    passed = {split: [r["id"] for r in records if r["split"] == split and r["line_no"] not in failed_lines[split]]
              for split in paths}
    return ExamplesReport(len(table), passed, failures, max_failure_ratio, max_seq_len, failed_lines)


# ---------------------------------------------------------------- acting on the report


def write_report(report: ExamplesReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def quarantine_examples(report: ExamplesReport, paths: Mapping[str, Path], out_dir: Path) -> Path:
    """Copy each failing line, byte for byte, to `out_dir/<split>.jsonl`, and the report to `report.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, path in paths.items():
        wanted = set(report.failed_lines.get(split, []))
        lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line if line.endswith("\n") else line + "\n" for n, line in enumerate(lines, 1) if n in wanted]
        (out_dir / f"{split}.jsonl").write_text("".join(kept), encoding="utf-8")
    write_report(report, out_dir / "report.json")
    return out_dir


def clean_examples(report: ExamplesReport, paths: Mapping[str, Path]) -> dict[str, list[Example]]:
    """The examples that passed every rule, per split. Raises ExamplesValidationFailed when the report is not ok."""
    if not report.ok:
        raise ExamplesValidationFailed(
            f"{report.summary()}. Fix or remove the failing examples (see the quarantine folder and its "
            "report.json), or raise examples.max_failure_ratio if these failures are acceptable."
        )
    clean: dict[str, list[Example]] = {}
    for split, path in paths.items():
        bad = set(report.failed_lines.get(split, []))
        numbered, _ = read_numbered_examples(path)
        clean[split] = [ex for n, ex in numbered if n not in bad]
    return clean
