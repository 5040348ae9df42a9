"""The evaluation plot: the per-step training loss beside the base-vs-adapter eval comparison (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_training_and_eval(metrics: Sequence[dict[str, Any]], report: Any, out: Path) -> Path:
    """Left: training loss per optimizer step. Right: eval loss and citation rates, base vs adapter. PNG.

    `report` is an adapter_eval.EvalReport, read by attribute only (not imported: adapter_eval imports this
    module, and the plot needs nothing of it but its fields).
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI; must precede pyplot
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot([m["step"] for m in metrics], [m["loss"] for m in metrics], marker="o")
    left.set(title="training loss (response tokens)", xlabel="step", ylabel="loss")
    names = ["eval loss", "sources present", "cites in context", "cites gold"]
    keys = ["loss", "sources_present", "citation_in_context", "citation_accuracy"]
    width = 0.38
    for offset, side in ((-width / 2, "base"), (width / 2, "adapter")):
        values = [getattr(getattr(report, side), k) or 0.0 for k in keys]
        bars = right.bar([i + offset for i in range(len(keys))], values, width, label=side)
        right.bar_label(bars, fmt="%.2f", fontsize=7)
    right.set_xticks(range(len(keys)), names, fontsize=8)
    right.set(title=f"held-out eval ({report.examples} examples, {report.citation_samples} generated)")
    right.legend()
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
