"""LoRA training throughput: `lorag train` vs HF Trainer + PEFT and TRL SFTTrainer (padded and packed).

The same base model, examples (the shipped `sample/examples/train.jsonl`, repeated with fresh ids), max_seq_len,
batch size, learning rate, LoRA settings and math threads on every side; one epoch each. Throughput is real
tokens per second: the non-pad tokens fed to the model, counted per step on every side, over the steps after a
warm-up, timed inside the training process (start-up, tokenising and saving excluded). Every configuration runs
`--repeats` times in a fresh process, in rotating order; the medians are compared.

- lorag: through the real path, `launch_training` (accelerate launch of `lorag.training.train`), 1 and 2
  processes; timed from the `elapsed_s`/`cpu_s` clocks of its step lines.
- HF Trainer + PEFT, the usual recipe: `get_peft_model`, `DataCollatorForSeq2Seq` padding to the longest example
  of the batch, one process; timed by a TrainerCallback, tokens counted by a wrapper around the collator.
- TRL SFTTrainer + PEFT, padded (`packing=False`) and with padding-free BFD packing (`packing=True`; the
  position_ids it passes give a block-diagonal causal mask under SDPA, or varlen flash attention on CUDA), one
  process, gradient checkpointing off (and bf16 on CUDA) set explicitly; timed and counted like HF.
- CUDA only: peak memory and MFU.

    python bench/train_throughput.py                       # CPU, tiny demo model: ~7 min on 2 free cores
    python bench/train_throughput.py --model /models/Qwen2.5-0.5B-Instruct --repeat-data 20 --peak-tflops 989

Writes bench/results/train_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import REPO, RESULTS, machine, set_threads, write_result  # bench/ is on sys.path: run as a script

# Dense bf16 tensor-core peaks (no sparsity), per GPU: what MFU is measured against unless --peak-tflops is given.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}
SIDES = ("lorag_1proc", "lorag_2proc", "hf_trainer_padded", "trl_sft_padded", "trl_sft_packed")
WORKER_OF = {"hf_trainer_padded": "hf", "trl_sft_padded": "trl_padded", "trl_sft_packed": "trl_packed"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, help="local model folder (nothing downloads); default: the demo tiny model")
    p.add_argument("--repeat-data", type=int, default=15, help="copies of sample/examples/train.jsonl (102 each)")
    p.add_argument("--max-seq-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=4, help="per process, every side")
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1, help="math threads per process, every side")
    p.add_argument("--warmup-steps", type=int, default=5, help="first steps of each run left out of the timing")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sides", default=",".join(SIDES), help=f"comma list of {', '.join(SIDES)}")
    p.add_argument("--peak-tflops", type=float, help="GPU bf16 peak for MFU (default: looked up by GPU name)")
    p.add_argument("--out", type=Path, default=RESULTS / "train_throughput.json")
    p.add_argument("--worker", choices=sorted(WORKER_OF.values()), help=argparse.SUPPRESS)
    p.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    unknown = set(args.sides.split(",")) - set(SIDES)
    if unknown:
        p.error(f"--sides: unknown {sorted(unknown)}; choose from {', '.join(SIDES)}")
    if args.model is not None and not (args.model / "config.json").is_file():
        p.error(f"--model {args.model}: no config.json there; give a local transformers model folder")
    if min(args.repeat_data, args.batch_size, args.threads, args.repeats) < 1 or args.warmup_steps < 1:
        p.error("--repeat-data, --batch-size, --threads, --repeats and --warmup-steps must be at least 1")
    return args


def timed_rate(steps: list[dict[str, float]], warmup: int) -> dict[str, float]:
    """Real tokens/s over the steps after `warmup`; each step has tokens, elapsed_s and cpu_s (since the start)."""
    if len(steps) < warmup + 5:
        raise RuntimeError(f"only {len(steps)} steps for {warmup} warm-up steps: raise --repeat-data")
    base, last = steps[warmup - 1], steps[-1]
    tokens = sum(s["tokens"] for s in steps[warmup:])
    wall, cpu = last["elapsed_s"] - base["elapsed_s"], last["cpu_s"] - base["cpu_s"]
    return {"timed_steps": len(steps) - warmup, "timed_tokens": tokens, "timed_seconds": wall,
            "tokens_per_s": tokens / wall, "tokens_per_cpu_s_rank0": tokens / cpu}


# --- the project every side reads -----------------------------------------------------------------------------


def make_project(root: Path, args: argparse.Namespace, model_dir: Path, cuda: bool) -> Path:
    import shutil

    import yaml

    lines = (REPO / "sample" / "examples" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    out = []
    for copy in range(args.repeat_data):
        for line in filter(str.strip, lines):
            record = json.loads(line)
            record["id"] = f"{record['id']}-c{copy}"
            out.append(json.dumps(record))
    (root / "data" / "examples").mkdir(parents=True)
    (root / "data" / "examples" / "train.jsonl").write_text("\n".join(out) + "\n", encoding="utf-8")
    shutil.copytree(REPO / "infra" / "accelerate", root / "infra" / "accelerate")
    train = {"base_model": str(model_dir), "max_seq_len": args.max_seq_len, "batch_size": args.batch_size,
             "learning_rate": args.learning_rate, "threads_per_process": args.threads, "epochs": 1,
             "checkpoint_every": 1_000_000, "precision": "bf16" if cuda else "fp32", "packing": True}
    (root / "params.yaml").write_text(yaml.safe_dump({"train": train}), encoding="utf-8")
    # Training reads the validated split (lorag.training.data.train_examples_path); the shipped sample examples
    # pass validation as they are, so every side reads the same copy from there.
    from lorag.config import load_params
    from lorag.training.data import train_examples_path

    clean = train_examples_path(load_params(root / "params.yaml"))
    clean.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / "data" / "examples" / "train.jsonl", clean)
    return root


def demo_model(folder: Path) -> Path:
    """The demo base model exactly as the pipeline builds it (tokenizer trained on the sample corpus)."""
    from lorag.config import load_params
    from lorag.retrain.base_model import sample_texts
    from lorag.training.tiny_model import build_tiny_base_model

    params = load_params(REPO)
    return build_tiny_base_model(params, folder, texts=sample_texts(params))


# --- lorag, through launch_training ------------------------------------------------------------------------------


def run_lorag(project: Path, world: int, cuda: bool, warmup: int, run_dir: Path) -> dict[str, Any]:
    from lorag.config import load_params
    from lorag.training.launcher import launch_training

    conf = ("gpu-1" if world == 1 else "gpu-ddp") if cuda else ("cpu-1proc" if world == 1 else "cpu-2proc")
    overrides = [f"train.accelerate_config={conf}"]
    t0 = time.perf_counter()
    result = launch_training(load_params(project, overrides), run_dir)
    s = result.summary
    rate = timed_rate(result.metrics, warmup)
    if world > 1:  # rank 0's CPU clock says nothing about the other rank's work
        rate["tokens_per_cpu_s_rank0"] = None
    return {**rate, "world_size": s["world_size"], "steps": s["steps"],
            "rows": s["rows"], "final_loss": s["final_loss"],
            # the same figure HF and TRL report as train_loss: the mean of the per-step losses over the epoch
            "mean_loss": statistics.fmean(m["loss"] for m in result.metrics),
            "peak_memory_bytes": s.get("peak_memory_bytes"),
            "wall_seconds_with_startup": time.perf_counter() - t0}


# --- HF Trainer / TRL, each in a fresh worker process -------------------------------------------------------------


def _timing_kit() -> tuple[Any, Any, list[dict[str, float]]]:
    """(collator wrapper, callback, steps): per-step real tokens and clocks, like lorag's step lines."""
    from transformers import TrainerCallback

    counts: list[int] = []
    steps: list[dict[str, float]] = []
    clock: dict[str, float] = {}

    def counting(inner: Any) -> Any:
        def collate(features: list[dict[str, Any]]) -> Any:
            batch = inner(features)
            mask = batch.get("attention_mask")  # no mask: padding-free (packed) batches have no pads
            counts.append(int(mask.sum()) if mask is not None else int(batch["input_ids"].numel()))
            return batch
        return collate

    class Clock(TrainerCallback):
        def on_train_begin(self, *_: Any, **__: Any) -> None:
            clock.update(wall=time.perf_counter(), cpu=time.process_time())

        def on_step_end(self, *_: Any, **__: Any) -> None:
            # The loader may prefetch a batch: the k-th batch collated is the k-th step's, whatever was fetched.
            steps.append({"tokens": counts[len(steps)], "elapsed_s": time.perf_counter() - clock["wall"],
                          "cpu_s": time.process_time() - clock["cpu"]})

    return counting, Clock(), steps


def _dataset(params: Any, tokenizer: Any) -> Any:
    from datasets import Dataset

    from lorag.training.data import encode_examples, load_examples, train_examples_path

    encoded, _ = encode_examples(tokenizer, load_examples(train_examples_path(params)), params.train.max_seq_len)
    return Dataset.from_list([{"input_ids": e.input_ids, "labels": e.labels} for e in encoded])


def worker(kind: str, project: Path, warmup: int) -> dict[str, Any]:
    import torch

    from lorag.config import load_params
    from lorag.training.lora import apply_lora, load_base

    params = load_params(project)
    tp, cuda = params.train, torch.cuda.is_available()
    torch.set_num_threads(tp.threads_per_process)
    model, tokenizer = load_base(params)
    data = _dataset(params, tokenizer)
    counting, clock, steps = _timing_kit()
    common = {"output_dir": str(project / f"out-{kind}"), "per_device_train_batch_size": tp.batch_size,
              "num_train_epochs": 1, "learning_rate": tp.learning_rate, "lr_scheduler_type": tp.lr_scheduler,
              "report_to": [], "save_strategy": "no", "logging_steps": 10**6, "disable_tqdm": True,
              "dataloader_num_workers": 0, "seed": tp.seed, "bf16": cuda, "use_cpu": not cuda}
    if kind == "hf":
        from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

        trainer = Trainer(model=apply_lora(model, tp.lora), args=TrainingArguments(**common), train_dataset=data,
                          data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True),
                          processing_class=tokenizer, callbacks=[clock])
    else:
        from peft import LoraConfig
        from trl import SFTConfig, SFTTrainer

        # Pre-tokenized with the same labels (TRL keeps a given "labels" column); packed: BFD, padding-free.
        # SFTConfig defaults to bf16 and gradient checkpointing: both set explicitly, like every other side.
        config = SFTConfig(**common, gradient_checkpointing=False, packing=kind == "trl_packed",
                           max_length=tp.max_seq_len)
        lora = LoraConfig(r=tp.lora.r, lora_alpha=tp.lora.alpha, lora_dropout=tp.lora.dropout,
                          target_modules=list(tp.lora.target_modules), task_type="CAUSAL_LM")
        trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                             peft_config=lora, callbacks=[clock])
    trainer.data_collator = counting(trainer.data_collator)  # the train loader is built at train()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    metrics = trainer.train().metrics
    # train_loss is the mean of the per-step losses (the last step's alone is not reported without logging)
    return {**timed_rate(steps, warmup), "steps": len(steps), "final_loss": None, "mean_loss": metrics["train_loss"],
            "peak_memory_bytes": torch.cuda.max_memory_allocated() if cuda else None}


def run_worker(kind: str, project: Path, warmup: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", kind, "--project", str(project), "--warmup-steps", str(warmup)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # the worker prints its result last


# --- the run -------------------------------------------------------------------------------------------------------


def add_mfu(medians: dict[str, dict[str, Any]], model_dir: Path, peak_tflops: float | None) -> dict[str, Any]:
    """6 x N_params FLOPs per token (the usual forward+backward count; LoRA skips the frozen weights' gradients,
    so the real work is nearer 4N and this overstates MFU a little) over the bf16 peak."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        n_params = sum(p.numel() for p in AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
                       .parameters())
    name = torch.cuda.get_device_name(0)
    peak = peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    for m in medians.values():
        m["mfu"] = 6 * n_params * m["tokens_per_s"] / (peak * 1e12) if peak else None
    return {"n_params": n_params, "gpu": name, "peak_bf16_tflops_assumed": peak, "flops_per_token": "6 * n_params"}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    set_threads(args.threads)
    if args.worker:
        print(json.dumps(worker(args.worker, args.project, args.warmup_steps)))
        return
    import torch

    cuda = torch.cuda.is_available()
    sides = [s for s in args.sides.split(",") if not (cuda and s == "lorag_2proc" and torch.cuda.device_count() < 2)]
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    with tempfile.TemporaryDirectory(prefix="lorag-train-bench-") as tmp_name:
        tmp = Path(tmp_name)
        model_dir = args.model or demo_model(tmp / "tiny")
        project = make_project(tmp / "project", args, model_dir, cuda)
        for rep in range(args.repeats):
            order = sides[rep % len(sides):] + sides[: rep % len(sides)]  # rotate: load drift hits every side
            for side in order:
                load = os.getloadavg()[0]
                if side.startswith("lorag"):
                    result = run_lorag(project, 1 if side == "lorag_1proc" else 2, cuda, args.warmup_steps,
                                       tmp / "runs" / f"{side}-{rep}")
                else:
                    result = run_worker(WORKER_OF[side], project, args.warmup_steps)
                runs[side].append({"repeat": rep, "load_average_1m_before": load, **result})
                print(side, rep, round(result["tokens_per_s"]), "tokens/s", file=sys.stderr, flush=True)
            payload = report(args, runs, model_dir, cuda)  # after every repeat: a killed run keeps what it measured
    print(json.dumps({k: v for k, v in payload.items() if k.startswith("speedup")}, indent=2))


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]], model_dir: Path,
           cuda: bool) -> dict[str, Any]:
    """Medians and speedups of the runs so far, written to --out."""
    medians = {s: {k: _median([r[k] for r in rs]) for k in ("tokens_per_s", "tokens_per_cpu_s_rank0",
                                                              "timed_seconds", "mean_loss", "final_loss")}
               for s, rs in runs.items() if rs}
    mfu = add_mfu(medians, model_dir, args.peak_tflops) if cuda else None
    payload: dict[str, Any] = {"machine": {**machine(), "gpu": cuda}, "settings": {
        "model": str(args.model) if args.model else "demo tiny Llama (2 layers, hidden 64, BPE 1024 on sample/docs)",
        "examples": f"sample/examples/train.jsonl x {args.repeat_data}", "max_seq_len": args.max_seq_len,
        "batch_size_per_process": args.batch_size, "learning_rate": args.learning_rate, "epochs": 1,
        "threads_per_process": args.threads, "warmup_steps_excluded": args.warmup_steps, "repeats": args.repeats,
        "precision": "bf16" if cuda else "fp32",
        "lorag_path": "launch_training (accelerate launch subprocess), timed from its step lines"},
        "repeats_done": min(len(rs) for rs in runs.values()), "median": medians, "mfu": mfu, "runs": runs}
    payload.update(speedups(runs, medians))
    write_result("train_throughput", payload, args.out)
    return payload


def _median(values: list[float | None]) -> float | None:
    return None if None in values else statistics.median(values)  # type: ignore[type-var]


def speedups(runs: dict[str, list[dict[str, Any]]], medians: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ratios of medians, and the median of per-repeat ratios (pairs run back to back, so less load drift)."""
    out: dict[str, Any] = {}
    n = min(len(rs) for rs in runs.values())
    pairs = [("lorag_1proc", "hf_trainer_padded"), ("lorag_2proc", "hf_trainer_padded"),
             ("lorag_2proc", "lorag_1proc"), ("lorag_1proc", "trl_sft_padded"), ("lorag_1proc", "trl_sft_packed"),
             ("trl_sft_packed", "trl_sft_padded")]
    for a, b in pairs:
        if a in runs and b in runs and n:
            out[f"speedup_{a}_vs_{b}"] = medians[a]["tokens_per_s"] / medians[b]["tokens_per_s"]
            out[f"speedup_{a}_vs_{b}_per_repeat_median"] = statistics.median(
                x["tokens_per_s"] / y["tokens_per_s"] for x, y in zip(runs[a][:n], runs[b][:n], strict=True))
    return out


if __name__ == "__main__":
    main()
