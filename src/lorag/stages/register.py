"""DVC stage: register the pipeline's adapter in MLflow as the `challenger` version, with its lineage.

    python -m lorag.stages.register --params params.yaml [--run-dir .lorag/train/pipeline]

Reads the training run id the train stage recorded and the evaluate stage's report; logs the eval run, the
pyfunc model, the version tags and lineage.json (lorag.registry.models). Writes run_dir/registered.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lorag.stages import parse_stage_args
from lorag.config import Params, load_params
from lorag.stages.train import pipeline_run_dir, read_run_record

RECORD = "registered.json"


def run(params: Params, run_dir: Path) -> Path:
    """Register run_dir's adapter; returns the path of the written registration record."""
    from lorag.evaluation.adapter_eval import read_report
    from lorag.registry.models import register_adapter, registered_summary

    report = read_report(params.path(params.adapter_eval.report_path))
    registered = register_adapter(params, read_run_record(run_dir), run_dir / "adapter", report,
                                  plot=params.path(params.adapter_eval.plot_path))
    out = run_dir / RECORD
    out.write_text(registered_summary(registered) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    def extra(p: argparse.ArgumentParser) -> None:
        p.add_argument("--run-dir", type=Path, default=None, help="training run folder (default: the pipeline's)")

    args = parse_stage_args(__doc__, "mlflow.registered_model=my-adapter", argv, extra)
    params = load_params(args.params, args.overrides)
    out = run(params, (args.run_dir or pipeline_run_dir(params)).resolve())
    print(out.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
