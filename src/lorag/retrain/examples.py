"""The examples a run trains on: put in place, versioned with DVC, validated by the Great Expectations suite.

Training reads only `examples.clean_dir`, which `validate_examples` writes from the lines that passed: a line
the suite quarantined never reaches training.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.validation.examples import ExamplesReport

SPLIT_FILES = ("train.jsonl", "eval.jsonl")


def prepare_examples(params: Params) -> Path:
    """Copy the shipped sample splits (`examples.sample_dir`) into `examples.dir`; returns that folder.

    Bring your own examples by writing the same two files into examples.dir instead.
    """
    src = params.examples.sample_dir
    missing = [name for name in SPLIT_FILES if not (src / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{src}: missing {', '.join(missing)}. Set examples.sample_dir to a folder with train.jsonl and "
            "eval.jsonl (see sample/examples/README.md for how to build them from questions and documents)."
        )
    dest = params.examples.dir
    dest.mkdir(parents=True, exist_ok=True)
    for name in SPLIT_FILES:
        shutil.copyfile(src / name, dest / name)
    return dest


def snapshot_examples(params: Params) -> str:
    """Version `examples.dir` with DVC; returns its data revision."""
    from lorag.versioning.dvc_repo import snapshot_folder

    return snapshot_folder(params, params.examples.dir).data_rev


def validate_examples(params: Params, tokenizer: Any | None = None) -> ExamplesReport:
    """Validate examples.dir; write the report, the quarantine and examples.clean_dir; raise when over the ratio.

    `tokenizer` defaults to the base model's own (the length rule must count what training will see).
    """
    from lorag.training.base_model import BaseModelRef
    from lorag.training.examples import write_split
    from lorag.validation.examples import clean_examples, quarantine_examples, write_report
    from lorag.validation.examples import validate_examples as run_suite

    src = params.examples.dir
    paths = {"train": src / "train.jsonl", "eval": src / "eval.jsonl"}
    report = run_suite(
        paths, tokenizer if tokenizer is not None else BaseModelRef.from_params(params).load_tokenizer(),
        max_seq_len=params.train.max_seq_len, max_failure_ratio=params.examples.max_failure_ratio,
    )
    write_report(report, params.examples.report_path)
    quarantine_examples(report, paths, params.examples.quarantine_dir)
    out = params.examples.clean_dir
    for stale in (out / name for name in SPLIT_FILES):
        stale.unlink(missing_ok=True)  # a failed run must not leave the last run's clean splits to train on
    clean = clean_examples(report, paths)  # raises ExamplesValidationFailed when over the ratio
    write_split(clean["train"], clean["eval"], out)
    return report
