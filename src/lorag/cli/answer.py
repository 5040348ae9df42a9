"""`lorag ask` and `lorag eval`: answers with citations, and the RAG x fine-tune evaluation matrix.

Registered on the app in lorag.cli; each command makes one call into lorag.answer / lorag.evaluation.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Annotated, Any, Optional

import typer

from lorag.cli.common import ParamsOpt, SetOpt, cli_params, fail

ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="champion | challenger | base | a version number (default: the champion once one exists, "
    "else the challenger, else the base model)")]


def ask_cmd(
    question: Annotated[str, typer.Argument(help="the question to answer")],
    model: ModelOpt = None,
    no_rag: Annotated[bool, typer.Option("--no-rag", help="answer without retrieval (no context in the prompt)")] = False,
    top_k: Annotated[Optional[int], typer.Option("--top-k", "-k", min=1, help="passages put in the prompt")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer, citations and passages as JSON")] = False,
    params_path: ParamsOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Answer a question from the published index with the base model + adapter, citing `path > heading`.

    A cited [n] that is not a passage of the context is flagged as invalid, never shown as a source.

    Examples:
      lorag ask "How much is the annual fee?"
      lorag ask "How much is the annual fee?" --model base --no-rag
      lorag ask "When is the equipment library open?" --model 3 --top-k 3 --json
    """
    from lorag.answer.ask import ask
    from lorag.retrieval.search import NoPublishedIndex
    from lorag.tracking.adapters import ModelNotFound
    from lorag.training.base_model import BaseModelMissing

    params = cli_params(params_path, overrides)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the answer (--json stays parseable)
            answer, note = ask(params, question, model, rag=not no_rag, top_k=top_k)
    except (ModelNotFound, NoPublishedIndex, BaseModelMissing, ValueError) as exc:
        fail(exc)
    if note:
        typer.secho(f"note: {note}", fg="yellow", err=True)
    if as_json:
        print(json.dumps(answer.to_dict(), indent=2))
        return
    _show_answer(answer)


def _show_answer(answer: Any) -> None:
    from lorag.console import output_console

    console = output_console()
    console.print(f"[dim]{answer.model}, {'RAG' if answer.rag else 'no retrieval'}, {answer.generated_tokens} "
                  f"tokens in {answer.seconds:.2f} s[/dim]", highlight=False)
    console.print(answer.answer or "[dim](empty answer)[/dim]", highlight=False)
    if not answer.citations:
        console.print("[yellow]no sources cited[/yellow]")
    for c in answer.citations:
        if c.valid:
            console.print(f"  [{c.n}] {c.citation}", highlight=False, markup=False)
        else:
            console.print(f"  [red][{c.n}] invalid: no passage {c.n} in the context "
                          f"({len(answer.passages)} given)[/red]", highlight=False)


def eval_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="the version to evaluate: challenger | champion | "
                                       "a version number")] = "challenger",
    no_champion: Annotated[bool, typer.Option("--no-champion", help="leave out the champion's rows")] = False,
    log: Annotated[bool, typer.Option("--log/--no-log", help="record the evaluation run in MLflow and tag the "
                                      "version with it")] = True,
    logged: Annotated[bool, typer.Option("--logged", help="print the version's recorded evaluation (its "
                                         "lorag.eval_run_id run) instead of evaluating again")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON")] = False,
    params_path: ParamsOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Evaluate a registered adapter version in the RAG x fine-tune matrix and print it.

    Rows: base, base + RAG, adapter, adapter + RAG (and the champion's two rows when one exists), each with a
    bootstrap interval; see the README "Reading the evaluation matrix".

    Examples:
      lorag eval
      lorag eval --model 3 --no-log
      lorag eval --logged                (the challenger's recorded evaluation, nothing re-run)
      lorag eval --set evaluation.max_questions=10 --json
    """
    from lorag.retrain.evaluate import evaluate_version
    from lorag.retrieval.search import NoPublishedIndex
    from lorag.tracking.adapters import ModelNotFound

    from lorag.tracking.evaluation import NoEvaluation

    params = cli_params(params_path, overrides)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            record = _recorded(params, model) if logged else \
                evaluate_version(params, model, champion=not no_champion, log=log).to_dict()
    except (ModelNotFound, NoEvaluation, NoPublishedIndex, FileNotFoundError, ValueError) as exc:
        fail(exc)
    if as_json:
        print(json.dumps(record, indent=2, default=str))
        return
    from lorag.evaluation.table import print_matrix

    print_matrix(record)


def _recorded(params: Any, model: str) -> dict[str, Any]:
    from lorag.tracking.adapters import find_version
    from lorag.tracking.evaluation import evaluation_record

    return evaluation_record(params, str(find_version(params, model).version))
