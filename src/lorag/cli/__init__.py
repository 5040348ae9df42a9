"""The `lorag` command line. Each command parses, loads params, makes one library call, prints the result.

Commands live in one module per track (knowledge.py, train.py); this module only assembles the app, so
importing it stays light (no torch, MLflow, Prefect...: each command imports what it needs when it runs).
"""

from __future__ import annotations

import typer

from lorag.cli import answer, knowledge, train
from lorag.cli import operate
from lorag.cli import promotion

app = typer.Typer(
    help="lorag: keep a RAG index equal to your documents, and fine-tune LoRA adapters, reproducibly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("reindex")(knowledge.reindex)
app.command("search")(knowledge.search)
app.command("status")(knowledge.status)
app.command("train")(train.train_cmd)
app.command("build-base-model")(train.build_base_model_cmd)
app.command("ask")(answer.ask_cmd)
app.command("eval")(answer.eval_cmd)

app.command("serve")(operate.serve)
app.command("schedule")(operate.schedule)
app.command("watch")(operate.watch)
app.command("drift")(operate.drift)

app.command("review")(promotion.review)
app.command("approve")(promotion.approve)
app.command("reject")(promotion.reject)
app.command("rollback")(promotion.rollback)
app.command("history")(promotion.history)


def main() -> None:  # pragma: no cover - console entry
    app(prog_name="lorag")
