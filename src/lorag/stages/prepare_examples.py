"""DVC stage: put the training examples in place (`examples.dir/{train,eval}.jsonl`).

    python -m lorag.stages.prepare_examples --params params.yaml

Copies the shipped sample (`examples.sample_dir`); see lorag.retrain.examples.prepare_examples.
"""

from __future__ import annotations

from lorag.config import load_params
from lorag.stages import parse_stage_args


def main(argv: list[str] | None = None) -> None:
    from lorag.retrain.examples import prepare_examples

    args = parse_stage_args(__doc__, "examples.sample_dir=my/examples", argv)
    print(f"examples ready in {prepare_examples(load_params(args.params, args.overrides))}")


if __name__ == "__main__":
    main()
