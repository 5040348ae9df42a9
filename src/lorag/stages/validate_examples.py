"""DVC stage: validate the training examples; write the report, the quarantine and the clean splits.

    python -m lorag.stages.validate_examples --params params.yaml

Exits non-zero (ExamplesValidationFailed) when more than examples.max_failure_ratio of the examples fail;
the report and the quarantined lines are written first so the failure can be inspected.
"""

from __future__ import annotations

from typing import Any

from lorag.stages import parse_stage_args
from lorag.config import Params, load_params
from lorag.training.examples import write_split
from lorag.validation.examples import (
    ExamplesReport,
    clean_examples,
    quarantine_examples,
    validate_examples,
    write_report,
)


def load_tokenizer(params: Params) -> Any:
    """The base model's own tokenizer (the length rule must count what training will see)."""
    from transformers import AutoTokenizer

    local = params.path(params.train.base_model)
    source = str(local) if local.exists() else params.train.base_model
    try:
        return AutoTokenizer.from_pretrained(source, revision=params.train.base_model_revision)
    except OSError as exc:
        raise FileNotFoundError(
            f"no tokenizer for train.base_model={params.train.base_model!r} ({exc}). Build the tiny base model "
            "first (its DVC stage) or point train.base_model at a local model folder."
        ) from exc


def run(params: Params, tokenizer: Any | None = None) -> ExamplesReport:
    """Validate examples.dir; write report, quarantine and examples.clean_dir; raise when over the ratio."""
    src = params.path(params.examples.dir)
    paths = {"train": src / "train.jsonl", "eval": src / "eval.jsonl"}
    report = validate_examples(
        paths, tokenizer if tokenizer is not None else load_tokenizer(params),
        max_seq_len=params.train.max_seq_len, max_failure_ratio=params.examples.max_failure_ratio,
    )
    write_report(report, params.path(params.examples.report_path))
    quarantine_examples(report, paths, params.path(params.examples.quarantine_dir))
    out = params.path(params.examples.clean_dir)
    for stale in (out / "train.jsonl", out / "eval.jsonl"):
        stale.unlink(missing_ok=True)  # a failed run must not leave the last run's clean splits to train on
    clean = clean_examples(report, paths)  # raises ExamplesValidationFailed when over the ratio
    write_split(clean["train"], clean["eval"], out)
    return report


def main(argv: list[str] | None = None) -> None:
    args = parse_stage_args(__doc__, "train.max_seq_len=1024", argv)
    report = run(load_params(args.params, args.overrides))
    print(report.summary())


if __name__ == "__main__":
    main()
