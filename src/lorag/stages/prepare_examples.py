"""DVC stage: put the training examples in place (`examples.dir/{train,eval}.jsonl`).

    python -m lorag.stages.prepare_examples --params params.yaml

The shipped sample (`examples.sample_dir`, built with `lorag.training.examples.build_grounded_examples` and
split by source document) is copied as is; bring your own examples by writing the same two files there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lorag.stages import parse_stage_args
from lorag.config import Params, load_params

SPLIT_FILES = ("train.jsonl", "eval.jsonl")


def prepare_examples(params: Params) -> Path:
    """Copy the sample splits into examples.dir and return that folder."""
    src = params.path(params.examples.sample_dir)
    missing = [name for name in SPLIT_FILES if not (src / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{src}: missing {', '.join(missing)}. Set examples.sample_dir to a folder with train.jsonl and "
            "eval.jsonl (see sample/examples/README.md for how to build them from questions and documents)."
        )
    dest = params.path(params.examples.dir)
    dest.mkdir(parents=True, exist_ok=True)
    for name in SPLIT_FILES:
        shutil.copyfile(src / name, dest / name)
    return dest


def main(argv: list[str] | None = None) -> None:
    args = parse_stage_args(__doc__, "examples.sample_dir=my/examples", argv)
    print(f"examples ready in {prepare_examples(load_params(args.params, args.overrides))}")


if __name__ == "__main__":
    main()
