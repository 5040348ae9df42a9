"""DVC stage: evaluate the pipeline's adapter on the held-out split; writes eval.json and the eval plot.

    python -m lorag.stages.evaluate --params params.yaml [--run-dir .lorag/train/pipeline]

Base vs base + adapter: response-token loss and perplexity, and the citation metric (see
lorag.evaluation.adapter_eval). Nothing is logged to MLflow here: the register stage records it with the model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lorag.config import load_params
from lorag.stages import parse_stage_args


def main(argv: list[str] | None = None) -> None:
    from lorag.retrain.evaluate import evaluate
    from lorag.training.run_folder import RunFolder, pipeline_run

    def extra(p: argparse.ArgumentParser) -> None:
        p.add_argument("--run-dir", type=Path, default=None, help="training run folder (default: the pipeline's)")

    args = parse_stage_args(__doc__, "adapter_eval.citation_samples=16", argv, extra)
    params = load_params(args.params, args.overrides)
    report = evaluate(params, RunFolder(args.run_dir) if args.run_dir else pipeline_run(params))
    m = report.metrics()
    print(f"eval loss base {m['base.loss']:.4f} -> adapter {m['adapter.loss']:.4f} "
          f"(perplexity {m['base.perplexity']:.1f} -> {m['adapter.perplexity']:.1f}); "
          f"citation accuracy adapter {report.adapter.citation_accuracy} on {report.citation_samples} prompts")


if __name__ == "__main__":
    main()
