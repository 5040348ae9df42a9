"""LoRA training throughput: `lorag train` (packing, accelerate) vs HF Trainer + PEFT (dynamic padding).

Real tokens per second (padding excluded) of the training loop on the same model, data and threads; lorag with
1 and 2 processes. On CPU the model is the tiny local Llama. On a CUDA host (`--model PATH`, a local model
folder, nothing downloads) it compares with TRL SFTTrainer and adds peak memory and MFU.

    python bench/train_throughput.py                    # CPU, about a minute on 2 free cores
    python bench/train_throughput.py --model /models/SmolLM2-135M-Instruct --examples 2000   # CUDA host

Writes bench/results/train_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from lorag.config import Params, load_params
from lorag.training.data import encode_examples, load_examples
from lorag.training.launcher import launch_training
from lorag.training.lora import apply_lora, load_base
from lorag.training.tiny_model import build_tiny_base_model

REPO = Path(__file__).resolve().parents[1]
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12}  # dense, per GPU


def synthetic_examples(n: int) -> list[dict[str, Any]]:
    """Varied lengths (so padding costs what it costs on real data)."""
    words = "session engine index adapter chunk query answer source document version model token".split()
    out = []
    for i in range(n):
        body = " ".join(words[(i * 7 + k) % len(words)] for k in range(8 + (i * 13) % 60))
        out.append({"id": f"b{i}", "instruction": f"Explain item {i}: {body[:80]}?",
                    "response": f"Item {i} is about {body}.", "context": body if i % 2 else None})
    return out


def make_project(root: Path, model_dir: str, n_examples: int, train: dict[str, Any]) -> Params:
    shutil.copytree(REPO / "infra" / "accelerate", root / "infra" / "accelerate")
    ex_dir = root / "data" / "examples"
    ex_dir.mkdir(parents=True)
    lines = [json.dumps({k: v for k, v in e.items() if v is not None}) for e in synthetic_examples(n_examples)]
    (ex_dir / "train.jsonl").write_text("\n".join(lines) + "\n")
    settings = {"base_model": model_dir, "checkpoint_every": 10_000, **train}
    (root / "params.yaml").write_text(yaml.safe_dump({"train": settings}))
    return load_params(root)


def run_lorag(params: Params, run_dir: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    result = launch_training(params, run_dir, [], track=False)
    s = result.summary
    return {"tokens": s["tokens"], "train_seconds": s["train_seconds"], "tokens_per_s": s["tokens_per_s"],
            "wall_seconds_with_startup": time.perf_counter() - t0, "world_size": s["world_size"],
            "final_loss": s["final_loss"], "peak_memory_bytes": s.get("peak_memory_bytes")}


def _encoded_dataset(params: Params, tokenizer: Any) -> Any:
    from datasets import Dataset

    encoded, _ = encode_examples(tokenizer, load_examples(params.path("data/examples/train.jsonl")),
                                 params.train.max_seq_len)
    return Dataset.from_list([{"input_ids": e.input_ids, "labels": e.labels} for e in encoded])


def run_hf_trainer(params: Params, out: Path, cuda: bool) -> dict[str, Any]:
    """HF Trainer + PEFT, one process, dynamic padding (the common recipe), same loss mask and batch size."""
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    tp = params.train
    torch.set_num_threads(tp.threads_per_process)
    model, tokenizer = load_base(params)
    model = apply_lora(model, tp.lora)
    data = _encoded_dataset(params, tokenizer)
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=tp.batch_size, num_train_epochs=1,
                             learning_rate=tp.learning_rate, lr_scheduler_type=tp.lr_scheduler, report_to=[],
                             save_strategy="no", logging_steps=10**6, use_cpu=not cuda, bf16=cuda,
                             dataloader_num_workers=0, disable_tqdm=True, seed=tp.seed)
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, padding=True)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    metrics = Trainer(model=model, args=args, train_dataset=data, data_collator=collator,
                      processing_class=tokenizer).train().metrics
    tokens = sum(len(x) for x in data["input_ids"])
    return {"tokens": tokens, "train_seconds": metrics["train_runtime"],
            "tokens_per_s": tokens / metrics["train_runtime"], "final_loss": metrics["train_loss"],
            "peak_memory_bytes": torch.cuda.max_memory_allocated() if cuda else None}


def run_trl_sft(params: Params, out: Path) -> dict[str, Any]:
    """TRL SFTTrainer + PEFT with its own packing, bf16 (CUDA only: on CPU TRL defaults need bf16 units)."""
    import torch
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    tp = params.train
    model, tokenizer = load_base(params)
    data = _encoded_dataset(params, tokenizer).map(lambda r: {"completion_mask": [x != -100 for x in r["labels"]]})
    data = data.remove_columns("labels")
    config = SFTConfig(output_dir=str(out), per_device_train_batch_size=tp.batch_size, num_train_epochs=1,
                       learning_rate=tp.learning_rate, report_to=[], save_strategy="no", bf16=True,
                       packing=tp.packing, max_length=tp.max_seq_len, gradient_checkpointing=False,
                       logging_steps=10**6, disable_tqdm=True)
    lora = LoraConfig(r=tp.lora.r, lora_alpha=tp.lora.alpha, lora_dropout=tp.lora.dropout,
                      target_modules=list(tp.lora.target_modules), task_type="CAUSAL_LM")
    torch.cuda.reset_peak_memory_stats()
    metrics = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                         peft_config=lora).train().metrics
    tokens = sum(len(x) for x in data["input_ids"])
    return {"tokens": tokens, "train_seconds": metrics["train_runtime"],
            "tokens_per_s": tokens / metrics["train_runtime"], "final_loss": metrics["train_loss"],
            "peak_memory_bytes": torch.cuda.max_memory_allocated()}


def add_mfu(results: dict[str, Any], n_params: int) -> None:
    """6 x params FLOPs per token (forward + backward, the usual convention) over the GPU's bf16 peak."""
    import torch

    name = torch.cuda.get_device_name(0)
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
    for r in results.values():
        if isinstance(r, dict) and "tokens_per_s" in r:
            r["mfu"] = 6 * n_params * r["tokens_per_s"] / peak if peak else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=128)
    parser.add_argument("--model", help="local model folder (CUDA runs); default: the tiny local Llama")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "train_throughput.json")
    args = parser.parse_args()
    import torch

    cuda = torch.cuda.is_available()
    base = {"batch_size": 4, "max_seq_len": 512, "epochs": 1, "threads_per_process": 1, "packing": True,
            "precision": "bf16" if cuda else "fp32"}
    results: dict[str, Any] = {"host": platform.node(), "cuda": cuda, "examples": args.examples, "settings": base}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model_dir = args.model or str(build_tiny_base_model(Params(), tmp / "tiny"))
        configs = {"lorag_1proc": "gpu-1" if cuda else "cpu-1proc", "lorag_2proc": "gpu-ddp" if cuda else "cpu-2proc"}
        for name, conf in configs.items():
            if cuda and name == "lorag_2proc" and torch.cuda.device_count() < 2:
                results[name] = "skipped: needs 2 GPUs"
                continue
            params = make_project(tmp / name, model_dir, args.examples, {**base, "accelerate_config": conf})
            results[name] = run_lorag(params, tmp / name / "run")
            print(name, json.dumps(results[name]), file=sys.stderr)
        params = make_project(tmp / "hf", model_dir, args.examples, base)
        results["hf_trainer_padded"] = run_hf_trainer(params, tmp / "hf" / "out", cuda)
        if cuda:
            results["trl_sft"] = run_trl_sft(params, tmp / "trl")
            model, _ = load_base(params)
            add_mfu(results, sum(p.numel() for p in model.parameters()))
    one, hf = results["lorag_1proc"], results["hf_trainer_padded"]
    results["speedup_lorag_vs_hf_trainer"] = one["tokens_per_s"] / hf["tokens_per_s"]
    if isinstance(results.get("lorag_2proc"), dict):
        results["speedup_2proc_vs_1proc"] = results["lorag_2proc"]["tokens_per_s"] / one["tokens_per_s"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k.startswith("speedup")}, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
