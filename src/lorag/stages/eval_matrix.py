"""DVC stage: the RAG x fine-tune evaluation matrix of the version the register stage made.

    python -m lorag.stages.eval_matrix --params params.yaml [--run-dir .lorag/train/pipeline] [--no-log]

Reads the version from run_dir/registered.json, evaluates it (lorag.retrain.evaluate.evaluate_matrix) with the
champion's rows when one exists, records the evaluation run in MLflow, and writes `evaluation.report_path` (DVC
metrics) and `evaluation.plot_path`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lorag.config import load_params
from lorag.stages import parse_stage_args


def main(argv: list[str] | None = None) -> None:
    from lorag.evaluation.table import print_matrix
    from lorag.retrain.evaluate import evaluate_matrix
    from lorag.training.run_folder import RunFolder, pipeline_run

    def extra(p: argparse.ArgumentParser) -> None:
        p.add_argument("--run-dir", type=Path, default=None, help="training run folder (default: the pipeline's)")
        p.add_argument("--no-log", action="store_true", help="do not record the evaluation run in MLflow")

    args = parse_stage_args(__doc__, "evaluation.max_questions=10", argv, extra)
    params = load_params(args.params, args.overrides)
    run = RunFolder(args.run_dir) if args.run_dir else pipeline_run(params)
    if not run.registered_file.is_file():
        raise SystemExit(f"{run.registered_file}: no registered version yet. Run the register stage first "
                         "(dvc repro register).")
    version = json.loads(run.registered_file.read_text(encoding="utf-8"))["version"]
    print_matrix(evaluate_matrix(params, version, log=not args.no_log))


if __name__ == "__main__":
    main()
