"""Held-out evaluation of a LoRA adapter against its own base model: response loss and citations.

Loss is measured exactly like training measures it: the chat template, loss on the assistant tokens only
(`encode_examples`), unpacked rows with an attention mask, so the numbers are comparable to the training curve.
Perplexity is exp of the token-weighted mean loss. The citation metric greedy-generates answers for a fixed
sample of eval prompts and reads their `Sources:` lines back with `parse_citations`: a tiny random model scores
near zero, which is the honest number for it.
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lorag.answer.format import chat_turns, cited_doc_id, format_prompt, parse_citations, parse_context
from lorag.config import Params
from lorag.training.data import IGNORE_INDEX, collate, encode_examples, load_examples, make_rows, train_examples_path
from lorag.training.examples import Example
from lorag.training.run_folder import RunFolder


@dataclass
class SideMetrics:
    """Metrics of one model (the base, or base + adapter) on the eval split."""

    loss: float
    perplexity: float
    sources_present: float | None = None  # share of generated answers with a Sources: block
    citation_in_context: float | None = None  # ... whose cited [n] all name a passage of the context
    citation_accuracy: float | None = None  # ... that cite a context passage from the gold source document


@dataclass
class EvalReport:
    examples: int
    scored_tokens: int
    base: SideMetrics
    adapter: SideMetrics
    citation_samples: int
    skipped: list[dict[str, str]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)  # id, adapter output, cited numbers

    def metrics(self) -> dict[str, float]:
        """Flat numeric metrics (`adapter.loss`, `base.citation_accuracy`, ...) for MLflow and the registry."""
        out: dict[str, float] = {}
        for side in ("base", "adapter"):
            for key, value in asdict(getattr(self, side)).items():
                if value is not None:
                    out[f"{side}.{key}"] = float(value)
        out["loss_delta"] = self.adapter.loss - self.base.loss
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "metrics": self.metrics()}


def eval_examples_path(params: Params) -> Path:
    """The held-out split next to the file training reads (same folder, so both come from one data revision)."""
    return train_examples_path(params).with_name("eval.jsonl")


def response_loss(model: Any, tokenizer: Any, examples: list[Example], max_seq_len: int,
                  batch_size: int) -> tuple[float, int, list[dict[str, str]]]:
    """(mean loss per response token, response tokens scored, skipped examples) with training's masking."""
    import torch

    encoded, skipped = encode_examples(tokenizer, examples, max_seq_len)
    if not encoded:
        raise ValueError("no eval example could be scored: every one was skipped (too long or empty response).")
    rows = make_rows(encoded, max_seq_len, packing=False)
    total, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            batch = collate(rows[i : i + batch_size], tokenizer.pad_token_id, packing=False)
            batch.pop("num_real_tokens")
            labels = batch.pop("labels")
            logits = model(**batch, use_cache=False).logits
            # position t predicts token t+1: (B, T-1, V) against (B, T-1)
            shift_logits, shift_labels = logits[:, :-1, :].float(), labels[:, 1:]
            total += torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1),
                ignore_index=IGNORE_INDEX, reduction="sum").item()
            tokens += int((shift_labels != IGNORE_INDEX).sum().item())
    return total / tokens, tokens, [{"id": s.id, "reason": s.reason} for s in skipped]


def generate_reply(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int) -> str:
    """Greedy reply to one user turn, special tokens removed: the generation the served pyfunc
    (mlflow/adapter_model.py, which cannot import lorag) repeats step for step."""
    import torch

    enc = tokenizer.apply_chat_template(chat_turns(prompt), add_generation_prompt=True, return_dict=True,
                                        return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def generate_answer(model: Any, tokenizer: Any, example: Example, max_new_tokens: int) -> str:
    """Greedy answer to the example's user turn (the serving prompt)."""
    return generate_reply(model, tokenizer, format_prompt(example.instruction, example.context), max_new_tokens)


def check_citations(output: str, example: Example) -> dict[str, Any]:
    """What the output cites and whether that is grounded: in the context, and in a gold source document."""
    cited = parse_citations(output)
    labels = parse_context(example.context or "")
    in_context = bool(cited) and all(n in labels for n in cited)
    gold = any(n in labels and cited_doc_id(labels[n]) in example.sources for n in cited)
    return {"cited": cited, "has_sources": bool(cited), "in_context": in_context, "gold": gold}


def citation_sample(examples: list[Example], n: int) -> list[Example]:
    """The first n eval examples (by id) that have a context and a gold source: fixed across runs."""
    usable = sorted((e for e in examples if e.context and e.sources), key=lambda e: e.id)
    return usable[:n]


def _citation_rates(model: Any, tokenizer: Any, sample: list[Example], max_new_tokens: int,
                    keep: list[dict[str, Any]] | None = None) -> dict[str, float | None]:
    if not sample:
        return {"sources_present": None, "citation_in_context": None, "citation_accuracy": None}
    checks = []
    for ex in sample:
        output = generate_answer(model, tokenizer, ex, max_new_tokens)
        check = check_citations(output, ex)
        checks.append(check)
        if keep is not None:
            keep.append({"id": ex.id, "output": output, **check})
    n = len(checks)
    return {"sources_present": sum(c["has_sources"] for c in checks) / n,
            "citation_in_context": sum(c["in_context"] for c in checks) / n,
            "citation_accuracy": sum(c["gold"] for c in checks) / n}


def evaluate_adapter(params: Params, adapter_dir: Path) -> EvalReport:
    """Score base and base + adapter on the eval split (`adapter_eval.*` knobs); loads the base model once."""
    import torch
    from peft import PeftModel

    from lorag.training.lora import load_base

    torch.set_num_threads(params.train.threads_per_process)
    ev = params.adapter_eval
    examples = load_examples(eval_examples_path(params))
    base, tokenizer = load_base(params)
    model = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    sample = citation_sample(examples, ev.citation_samples)
    sides: dict[str, SideMetrics] = {}
    kept: list[dict[str, Any]] = []
    scored, skipped = 0, []
    for side in ("base", "adapter"):
        with model.disable_adapter() if side == "base" else nullcontext():
            loss, scored, skipped = response_loss(model, tokenizer, examples, params.train.max_seq_len, ev.batch_size)
            rates = _citation_rates(model, tokenizer, sample, ev.max_new_tokens, kept if side == "adapter" else None)
        sides[side] = SideMetrics(loss=loss, perplexity=math.exp(min(loss, 50.0)), **rates)
    return EvalReport(examples=len(examples), scored_tokens=scored, base=sides["base"], adapter=sides["adapter"],
                      citation_samples=len(sample), skipped=skipped, samples=kept)


def write_report(report: EvalReport, path: Path) -> Path:
    """eval.json (DVC reads it as a metrics file)."""
    return write_metrics_file(report.to_dict(), path)


def write_metrics_file(data: dict[str, Any], path: Path) -> Path:
    """A JSON metrics file written atomically: DVC (or a reader) never sees half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.rename(path)
    return path


def read_report(path: Path) -> EvalReport:
    """The EvalReport a previous `write_report` saved (the register stage reads the evaluate stage's output)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no evaluation report. Evaluate the adapter first (lorag.stages.evaluate).")
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.pop("metrics", None)
    return EvalReport(**{**raw, "base": SideMetrics(**raw["base"]), "adapter": SideMetrics(**raw["adapter"])})


def run_evaluation(params: Params, run: RunFolder) -> EvalReport:
    """Evaluate the run's adapter, write `adapter_eval.report_path` and the plot `adapter_eval.plot_path`."""
    from lorag.evaluation.plots import plot_training_and_eval

    report = evaluate_adapter(params, run.require_adapter())
    write_report(report, params.adapter_eval.report_path)
    plot_training_and_eval(run.read_metrics(), report, params.adapter_eval.plot_path)
    return report
