"""The evaluation matrix as a rich table for the terminal (`lorag eval`)."""

from __future__ import annotations

import math
from typing import Any

_COLUMNS = ("exact_match", "f1", "cited_format", "citation_validity", "citation_accuracy", "groundedness")
_COST = ("prompt_tokens", "generated_tokens", "seconds_per_answer")
_DIFFS = ("adapter_vs_base", "base_rag_vs_base", "adapter_rag_vs_adapter", "adapter_rag_vs_base_rag",
          "adapter_vs_champion", "adapter_rag_vs_champion_rag")


def _short(v: float) -> str:
    return f"{v:.2f}".replace("0.", ".", 1) if 0 <= v < 1 else f"{v:.2f}"


def _cell(m: dict[str, float], name: str, digits: int = 2, sep: str = " ") -> str:
    v = m.get(name, math.nan)
    if math.isnan(v):
        return "[dim]n/a[/dim]"
    lo, hi = m.get(f"{name}.ci_low", math.nan), m.get(f"{name}.ci_high", math.nan)
    ci = "" if math.isnan(lo) else f"{sep}[dim]\\[{_short(lo)},{_short(hi)}][/dim]"
    return f"{v:.{digits}f}{ci}"


_HEAD = {"exact_match": "EM", "f1": "F1", "cited_format": "format", "citation_validity": "valid",
         "citation_accuracy": "gold src", "groundedness": "grounded"}


def print_matrix(matrix: Any, console: Any = None) -> None:
    """An EvalMatrix (or its `to_dict()` record, e.g. eval_matrix.json of an evaluation run) as tables."""
    print_record(matrix if isinstance(matrix, dict) else matrix.to_dict(), console)


def print_record(record: dict[str, Any], console: Any = None) -> None:
    """Rows x answer metrics with intervals, cost per answer, retrieval, paired differences, flags."""
    from lorag.console import output_console
    from rich.table import Table

    console = console or output_console()
    m = {k: (math.nan if v is None else float(v)) for k, v in record["metrics"].items()}
    champion = record.get("champion_version")
    table = Table(title=f"evaluation matrix: version {record['version']}"
                  + (f" vs champion {champion}" if champion and champion != "None" else "")
                  + f" ({record['questions']} questions, set {record['question_set_hash'][:12]}, 95% intervals)")
    table.add_column("row", no_wrap=True)
    for c in _COLUMNS:
        table.add_column(_HEAD[c], justify="right", no_wrap=True)
    for c in ("p.tok", "g.tok", "s/ans"):
        table.add_column(c, justify="right", no_wrap=True)
    for row in record["rows"]:
        cost = [_cost(m[f"{row}.{c}"], c) for c in _COST]
        table.add_row(row, *(_cell(m, f"{row}.{c}", sep="\n") for c in _COLUMNS), *cost)
    console.print(table)
    console.print("retrieval: " + ", ".join(f"{k} {_cell(m, f'retrieval.{k}')}"
                                            for k in ("recall_at_k", "mrr", "ndcg_at_10")))
    console.print("loss (eval split): " + ", ".join(f"{r} {_cell(m, f'{r}.loss', 3)}" for r in ("base", "adapter")))
    for pair in _DIFFS:
        if f"diff.{pair}.f1" in m:
            console.print(f"diff {pair}: f1 {_cell(m, f'diff.{pair}.f1')}, gold src "
                          f"{_cell(m, f'diff.{pair}.citation_accuracy')}, format "
                          f"{_cell(m, f'diff.{pair}.cited_format')}")
    raft = record.get("raft_failure") or {}
    if raft.get("adapter_rag_below_adapter"):
        noise = "beyond noise" if raft.get("beyond_noise") else "within noise"
        console.print(f"[red]RAFT failure mode: adapter + RAG scores below adapter on F1 ({noise})[/red]")
    for note in record.get("notes", []):
        console.print(f"[dim]note: {note}[/dim]")


def _cost(value: float, name: str) -> str:
    if math.isnan(value):
        return "[dim]n/a[/dim]"
    return f"{value:.3f}" if name == "seconds_per_answer" else f"{value:.0f}"
