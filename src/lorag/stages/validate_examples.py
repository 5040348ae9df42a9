"""DVC stage: validate the training examples; write the report, the quarantine and the clean splits.

    python -m lorag.stages.validate_examples --params params.yaml

Exits non-zero (ExamplesValidationFailed) when more than examples.max_failure_ratio of the examples fail;
the report and the quarantined lines are written first so the failure can be inspected.
"""

from __future__ import annotations

from lorag.config import load_params
from lorag.stages import parse_stage_args


def main(argv: list[str] | None = None) -> None:
    from lorag.retrain.examples import validate_examples

    args = parse_stage_args(__doc__, "train.max_seq_len=1024", argv)
    print(validate_examples(load_params(args.params, args.overrides)).summary())


if __name__ == "__main__":
    main()
