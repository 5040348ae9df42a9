"""DVC stage: build the tiny demo base model at `train.base_model` (random weights, nothing downloads).

    python -m lorag.stages.build_base_model --params params.yaml

A no-op when `train.base_model` names a real model (see lorag.retrain.base_model).
"""

from __future__ import annotations

from lorag.config import load_params
from lorag.stages import parse_stage_args


def main(argv: list[str] | None = None) -> None:
    from lorag.retrain.base_model import build_base_model

    args = parse_stage_args(__doc__, "train.tiny_model.hidden_size=128", argv)
    params = load_params(args.params, args.overrides)
    built = build_base_model(params)
    if built is None:
        print(f"train.base_model={params.train.base_model!r} is not a lorag demo model: nothing to build")
    else:
        print(f"demo base model built in {built}")


if __name__ == "__main__":
    main()
