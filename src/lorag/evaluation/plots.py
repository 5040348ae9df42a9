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
    return _save(fig, out)


_HEAT_METRICS = ("exact_match", "f1", "cited_format", "citation_validity", "citation_accuracy", "groundedness")


def plot_matrix(matrix: Any, out: Path) -> Path:
    """The evaluation matrix as a heatmap: rows = configurations, columns = answer metrics, each cell the mean
    and its interval; NaN cells grey and marked n/a. Beside it the cost per answer (prompt / generated tokens)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    m = matrix.metrics()
    rows = matrix.rows
    grid = np.array([[m[f"{r}.{k}"] for k in _HEAT_METRICS] for r in rows], dtype=float)  # (rows, metrics)
    fig, (heat, cost) = plt.subplots(1, 2, figsize=(13, 1.2 + 0.7 * len(rows)),
                                     gridspec_kw={"width_ratios": [3, 1]})
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")  # NaN cells: grey, marked n/a
    heat.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i, r in enumerate(rows):
        for j, k in enumerate(_HEAT_METRICS):
            v, lo, hi = grid[i, j], m[f"{r}.{k}.ci_low"], m[f"{r}.{k}.ci_high"]
            text = "n/a" if np.isnan(v) else (f"{v:.2f}\n[{lo:.2f}, {hi:.2f}]" if not np.isnan(lo) else f"{v:.2f}")
            heat.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if v < 0.6 else "black")
    heat.set_xticks(range(len(_HEAT_METRICS)), [k.replace("_", "\n") for k in _HEAT_METRICS], fontsize=8)
    heat.set_yticks(range(len(rows)), rows)
    raft = ""
    if matrix.raft.get("adapter_rag_below_adapter"):
        noise = "beyond noise" if matrix.raft.get("beyond_noise") else "within noise"
        raft = f" - adapter+RAG < adapter on F1 ({noise})"
    heat.set_title(f"version {matrix.version}: {len(matrix.questions)} questions, 95% bootstrap intervals{raft}",
                   fontsize=9)
    y = np.arange(len(rows))
    cost.barh(y - 0.2, [m[f"{r}.prompt_tokens"] for r in rows], 0.4, label="prompt tokens")
    cost.barh(y + 0.2, [m[f"{r}.generated_tokens"] for r in rows], 0.4, label="generated tokens")
    cost.set_yticks(y, rows)
    cost.invert_yaxis()
    cost.set_title("cost per answer", fontsize=9)
    cost.legend(fontsize=7)
    return _save(fig, out)


def _save(fig: Any, out: Path) -> Path:
    """Write a figure as PNG (folders made) and free it: pyplot keeps every open figure alive otherwise."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
