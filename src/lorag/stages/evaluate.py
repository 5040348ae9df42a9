"""DVC stage: evaluate the pipeline's adapter on the held-out split; writes eval.json and the eval plot.

    python -m lorag.stages.evaluate --params params.yaml [--run-dir .lorag/train/pipeline]

Base vs base + adapter: response-token loss and perplexity, and the citation metric (see
lorag.evaluation.adapter_eval). Nothing is logged to MLflow here: the register stage records it with the model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lorag.config import load_params
from lorag.stages.train import pipeline_run_dir


def main(argv: list[str] | None = None) -> None:
    from lorag.evaluation.adapter_eval import run_evaluation

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="path to params.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a parameter, e.g. --set adapter_eval.citation_samples=16")
    parser.add_argument("--run-dir", type=Path, default=None, help="training run folder (default: the pipeline's)")
    args = parser.parse_args(argv)
    params = load_params(args.params, args.overrides)
    report = run_evaluation(params, args.run_dir or pipeline_run_dir(params))
    m = report.metrics()
    print(f"eval loss base {m['base.loss']:.4f} -> adapter {m['adapter.loss']:.4f} "
          f"(perplexity {m['base.perplexity']:.1f} -> {m['adapter.perplexity']:.1f}); "
          f"citation accuracy adapter {report.adapter.citation_accuracy} on {report.citation_samples} prompts")


if __name__ == "__main__":
    main()
