"""DVC stage: register the pipeline's adapter in MLflow as the `challenger` version, with its lineage.

    python -m lorag.stages.register --params params.yaml [--run-dir .lorag/train/pipeline]

Reads the training run id the train stage recorded and the evaluate stage's report (lorag.retrain.register);
writes run_dir/registered.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lorag.config import load_params
from lorag.stages import parse_stage_args


def main(argv: list[str] | None = None) -> None:
    from lorag.retrain.register import register
    from lorag.training.run_folder import RunFolder, pipeline_run

    def extra(p: argparse.ArgumentParser) -> None:
        p.add_argument("--run-dir", type=Path, default=None, help="training run folder (default: the pipeline's)")

    args = parse_stage_args(__doc__, "mlflow.registered_model=my-adapter", argv, extra)
    params = load_params(args.params, args.overrides)
    registered = register(params, RunFolder(args.run_dir) if args.run_dir else pipeline_run(params))
    print(json.dumps(registered.summary(), indent=2))


if __name__ == "__main__":
    main()
