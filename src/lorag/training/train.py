"""The LoRA training script, run under `accelerate launch` (use `lorag.training.launcher`, not this directly).

    accelerate launch --config_file infra/accelerate/cpu-2proc.yaml -m lorag.training.train \
        --run-dir .lorag/train/run-1

The Params come from run_dir/params.json, written by the launcher from the caller's validated Params. Every rank
trains; only rank 0 writes artifacts (through lorag.training.run_folder). One JSON object per line on stdout
(rank 0): events "start", "step" (loss, lr, real tokens/s with padding excluded), "checkpoint", "end". The same
lines go to run_dir/metrics.jsonl. MLflow is recorded by the caller after this process exits 0, so a killed or
failed run registers nothing. Debug switches (tests): LORAG_TRAIN_DEBUG=1 writes per-rank batch ids and a checksum of
the trainable parameters to run_dir/debug/; LORAG_TRAIN_DEBUG_STEP_SLEEP=S sleeps S seconds after each step.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lorag.config import Params, TrainParams
from lorag.training import checkpoints as ckpt
from lorag.training.accelerate_setup import training_precision
from lorag.training.base_model import BaseModelRef
from lorag.training.data import (
    BatchOrder,
    Row,
    collate,
    encode_examples,
    load_examples,
    make_rows,
    train_examples_path,
)
from lorag.training.lora import apply_lora, load_base, response_loss_model, save_adapter, use_packed_attention
from lorag.training.run_folder import RunFolder

EXPECTED_WORLD_SIZE_ENV = "LORAG_EXPECTED_WORLD_SIZE"
DEBUG_ENV = "LORAG_TRAIN_DEBUG"
STEP_SLEEP_ENV = "LORAG_TRAIN_DEBUG_STEP_SLEEP"
_SCHEDULER = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


class Reporter:
    """JSON lines to stdout and metrics.jsonl (rank 0), debug files per rank."""

    def __init__(self, accelerator: Any, run_dir: Path) -> None:
        self.main = accelerator.is_main_process
        self.rank = accelerator.process_index
        self.run = RunFolder(run_dir)
        self.debug = os.environ.get(DEBUG_ENV) == "1"
        self.wrote: list[str] = []
        if self.debug:
            self.run.debug.mkdir(parents=True, exist_ok=True)

    def emit(self, event: str, **fields: Any) -> None:
        if not self.main:
            return
        line = json.dumps({"event": event, **fields})
        print(line, flush=True)
        self.run.append_event(line)

    def debug_record(self, name: str, record: dict[str, Any]) -> None:
        if self.debug:
            with open(self.run.debug / f"rank{self.rank}-{name}.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


def check_world_size(accelerator: Any) -> None:
    """`accelerate launch --cpu --num_processes 2` silently starts ONE process: catch that before training."""
    expected = os.environ.get(EXPECTED_WORLD_SIZE_ENV)
    if expected is not None and int(expected) != accelerator.num_processes:
        raise RuntimeError(
            f"accelerate started {accelerator.num_processes} process(es) but {expected} were intended "
            f"({EXPECTED_WORLD_SIZE_ENV}). On CPU use a config with `distributed_type: MULTI_GPU` and "
            "`use_cpu: true` (infra/accelerate/cpu-2proc.yaml) with ACCELERATE_USE_CPU=true; `--cpu "
            "--num_processes N` starts one process."
        )


def build_rows(params: Params, tokenizer: Any) -> tuple[list[Row], list[dict[str, str]], int]:
    """(rows, skipped examples with reasons, number of examples read)."""
    examples = load_examples(train_examples_path(params))
    encoded, skipped = encode_examples(tokenizer, examples, params.train.max_seq_len)
    rows = make_rows(encoded, params.train.max_seq_len, params.train.packing)
    return rows, [{"id": s.id, "reason": s.reason} for s in skipped], len(examples)


def total_steps(tp: TrainParams, order: BatchOrder) -> int:
    return tp.max_steps or max(1, (tp.epochs * order.micro_per_epoch) // tp.grad_accum)


def trainable_checksum(model: Any) -> str:
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if p.requires_grad:
            digest.update(name.encode())
            digest.update(p.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _data_signature(tp: TrainParams, order: BatchOrder) -> dict[str, int]:
    return {"n_rows": order.n_rows, "world_size": order.world_size, "batch_size": tp.batch_size,
            "grad_accum": tp.grad_accum, "seed": tp.seed}


def resume(accelerator: Any, run_dir: Path, signature: dict[str, int]) -> tuple[int, int]:
    """Load the newest complete checkpoint; (step, tokens seen) to continue from, (0, 0) for a fresh run."""
    if accelerator.is_main_process:
        ckpt.remove_partial(run_dir)
    accelerator.wait_for_everyone()
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is None:
        return 0, 0
    step, path, state = latest
    if state["data"] != signature:
        raise RuntimeError(
            f"{path} was written with data/world settings {state['data']}, this run has {signature}: "
            "the data order cannot be resumed. Use a new --run-dir or restore the old settings."
        )
    accelerator.load_state(str(path))
    return step, int(state["tokens"])


def save_checkpoint(accelerator: Any, run_dir: Path, step: int, state: dict[str, Any]) -> Path:
    tmp = ckpt.tmp_dir(run_dir, step)
    tmp.mkdir(parents=True, exist_ok=True)  # every rank writes its RNG state here
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    final = ckpt.checkpoints_dir(run_dir) / f"step-{step}"
    if accelerator.is_main_process:
        ckpt.finalize(run_dir, step, state)
    accelerator.wait_for_everyone()
    return final


def train(params: Params, run_dir: Path) -> dict[str, Any]:
    """Run (or resume) LoRA training into run_dir; returns the summary (rank 0 also writes it)."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    tp = params.train
    torch.set_num_threads(tp.threads_per_process)
    precision = training_precision(params)  # train.precision "auto" follows the accelerate config and hardware
    accelerator = Accelerator(gradient_accumulation_steps=tp.grad_accum, mixed_precision=precision)
    check_world_size(accelerator)
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(tp.seed)  # same LoRA init on every rank; dropout streams are restored from checkpoints on resume
    model, tokenizer = load_base(params)
    if tp.packing:
        use_packed_attention(model)
    # Sharded setups (FSDP, DeepSpeed) keep the model's own loss: the label-only head calls submodules directly.
    sharded = accelerator.distributed_type.value in ("FSDP", "DEEPSPEED", "MEGATRON_LM")
    model = response_loss_model(apply_lora(model, tp.lora), label_only=not sharded)
    rows, skipped, n_examples = build_rows(params, tokenizer)
    order = BatchOrder(len(rows), tp.batch_size, accelerator.num_processes, accelerator.process_index, tp.seed)
    return _run(params, run_dir, accelerator, model, tokenizer, rows, order, skipped, n_examples)


def _run(params: Params, run_dir: Path, accelerator: Any, model: Any, tokenizer: Any, rows: list[Row],
         order: BatchOrder, skipped: list[dict[str, str]], n_examples: int) -> dict[str, Any]:
    import torch
    from transformers import get_scheduler

    tp = params.train
    steps = total_steps(tp, order)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=tp.learning_rate,
                                  foreach=True)
    # Not passed to prepare(): accelerate would step it once per process per call.
    scheduler = get_scheduler(_SCHEDULER[tp.lr_scheduler], optimizer, num_warmup_steps=tp.warmup_steps,
                              num_training_steps=steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    signature = _data_signature(tp, order)
    start, tokens = resume(accelerator, run_dir, signature)
    rep = Reporter(accelerator, run_dir)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rep.emit("start", step=start, total_steps=steps, resumed_from_step=start or None,
             world_size=accelerator.num_processes, examples=n_examples, rows=len(rows), skipped=skipped,
             trainable_params=n_trainable)
    rep.debug_record("batches", {"launch": True, "start_step": start})
    loop = _Loop(accelerator, model, optimizer, scheduler, tokenizer.pad_token_id, tp, rows, rep, steps)
    t_begin, tokens_before, loss = loop.t_begin, tokens, float("nan")
    stream = order.iter_from(start * tp.grad_accum)
    for step in range(start + 1, steps + 1):
        loss, step_tokens = loop.step(step, stream)
        tokens += step_tokens
        if step % tp.checkpoint_every == 0:
            path = save_checkpoint(accelerator, run_dir, step, {"step": step, "tokens": tokens, "data": signature})
            rep.emit("checkpoint", step=step, path=str(path))
    elapsed = time.perf_counter() - t_begin
    summary = {"steps": steps, "total_steps": steps, "resumed_from_step": start or None, "tokens": tokens,
               "tokens_this_launch": tokens - tokens_before, "train_seconds": elapsed,
               "tokens_per_s": (tokens - tokens_before) / elapsed if elapsed > 0 else None, "final_loss": loss,
               "world_size": accelerator.num_processes, "examples": n_examples, "rows": len(rows),
               "skipped": skipped, "trainable_params": n_trainable, "precision": accelerator.mixed_precision,
               "peak_memory_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
               **BaseModelRef.from_params(params).record()}
    _finish(accelerator, model, run_dir, summary, rep)
    return summary


class _Loop:
    """One optimizer step = grad_accum micro-batches under `accelerator.accumulate`."""

    def __init__(self, accelerator: Any, model: Any, optimizer: Any, scheduler: Any, pad_id: int,
                 tp: TrainParams, rows: list[Row], rep: Reporter, total: int) -> None:
        self.acc, self.model, self.opt, self.sched, self.pad_id = accelerator, model, optimizer, scheduler, pad_id
        self.tp, self.rows, self.rep, self.total = tp, rows, rep, total
        self.sleep = float(os.environ.get(STEP_SLEEP_ENV, "0"))
        # Clocks of the step lines: benchmarks time steps after a warm-up from them (wall, and CPU of rank 0).
        self.t_begin, self.cpu_begin = time.perf_counter(), time.process_time()
        model.train()

    def step(self, step: int, stream: Iterator[tuple[int, int, list[int]]]) -> tuple[float, int]:
        """Run optimizer step `step`; emits its metrics line and returns (mean loss, real tokens) over ranks."""
        import torch

        acc, t0, loss_sum, n_tokens, epoch = self.acc, time.perf_counter(), 0.0, 0, 0
        for _ in range(self.tp.grad_accum):
            micro, epoch, idx = next(stream)
            batch = collate([self.rows[i] for i in idx], self.pad_id, self.tp.packing)
            n_tokens += batch.pop("num_real_tokens")  # padding excluded from throughput
            self.rep.debug_record("batches", {"step": step, "micro": micro,
                                              "example_ids": [self.rows[i].example_ids for i in idx]})
            with acc.accumulate(self.model):
                micro_loss = self.model(**{k: v.to(acc.device) for k, v in batch.items()})
                acc.backward(micro_loss)
                self.opt.step()  # a no-op until the last micro-batch of the step (accelerate tracks it)
                if acc.sync_gradients:
                    self.sched.step()
                self.opt.zero_grad()
            loss_sum += micro_loss.detach().float().item() / self.tp.grad_accum
        # One collective for both numbers (float64 holds token counts exactly).
        totals = acc.reduce(torch.tensor([loss_sum, n_tokens], dtype=torch.float64, device=acc.device), "sum")
        loss, tokens = totals[0].item() / acc.num_processes, int(totals[1].item())
        now = time.perf_counter()
        self.rep.emit("step", step=step, total_steps=self.total, epoch=epoch, loss=loss,
                      lr=self.sched.get_last_lr()[0], tokens=tokens, tokens_per_s=tokens / (now - t0),
                      elapsed_s=now - self.t_begin, cpu_s=time.process_time() - self.cpu_begin)
        if self.sleep > 0:
            time.sleep(self.sleep)
        return loss, tokens


def _finish(accelerator: Any, model: Any, run_dir: Path, summary: dict[str, Any], rep: Reporter) -> None:
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)  # the response-loss module around the peft model
    # Collective under FSDP/DeepSpeed (gathers the shards), a plain state_dict under DDP: every rank calls it.
    state = {k.removeprefix("peft_model."): v for k, v in accelerator.get_state_dict(model).items()}
    if accelerator.is_main_process:
        run = RunFolder(run_dir)
        adapter = save_adapter(unwrapped.peft_model, run.adapter, state_dict=state)
        summary["adapter_dir"] = str(adapter)
        run.write_summary(summary)  # the launcher treats summary.json as "the run completed"
        run.mark_finished()
        rep.wrote += [str(adapter), str(run.summary_file)]
        rep.emit("end", **{k: v for k, v in summary.items() if k != "skipped"})
    rep.debug_record("final", {"rank": accelerator.process_index, "checksum": trainable_checksum(unwrapped),
                               "wrote": rep.wrote})
    accelerator.wait_for_everyone()
    accelerator.end_training()


def die_with_parent() -> None:
    """Exit when the launcher dies, even by SIGKILL.

    torchrun starts every rank in a session of its own, so killing the launcher's process group (Ctrl-C, a CI
    timeout, the OOM killer) would leave the ranks training on and writing checkpoints into the run dir.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    die_with_parent()
    parser = argparse.ArgumentParser(prog="python -m lorag.training.train", description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", required=True, type=Path,
                        help="run folder holding params.json (written by the launcher); checkpoints, adapter, metrics")
    args = parser.parse_args(argv)
    run = RunFolder(args.run_dir)
    train(run.read_params(), run.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
