"""Brief causal-LM pre-training of the tiny demo base model on the sample corpus, so that it writes text.

A random-weight model answers with byte soup and every answer metric is zero, so the evaluation matrix would show
nothing. A few hundred full-parameter steps on the sample documents (next-token loss over fixed-length windows of
the concatenated, EOS-separated documents) give the demo a base model that writes the corpus's words; the LoRA
adapter then has something to teach: the cited-answer format. Deterministic for a seed; single process, CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PretrainResult:
    steps: int
    tokens: int
    first_loss: float
    final_loss: float  # mean of the last 10 steps
    seconds: float


def token_windows(tokenizer: Any, texts: Sequence[str], seq_len: int) -> Any:
    """(N, seq_len) tensor: the documents tokenised, joined with EOS, cut into windows (the tail dropped)."""
    import torch

    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        ids.append(tokenizer.eos_token_id)
    n = len(ids) // seq_len
    if n == 0:
        raise ValueError(f"the pre-training text is {len(ids)} tokens, fewer than one window of {seq_len}: add "
                         "documents to corpus.sample_dir or lower train.tiny_model.pretrain_seq_len.")
    return torch.tensor(ids[: n * seq_len]).view(n, seq_len)


def pretrain(model_dir: Path, texts: Sequence[str], *, steps: int, seq_len: int, batch_size: int, lr: float,
             seed: int) -> PretrainResult:
    """Train every weight of the model in `model_dir` on `texts` for `steps` steps; saves it back in place."""
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    windows = token_windows(tokenizer, texts, seq_len)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    model.train()
    losses: list[float] = []
    start = time.perf_counter()
    for _ in range(steps):
        batch = windows[torch.randint(0, windows.shape[0], (batch_size,), generator=generator)]  # (B, T)
        loss = model(input_ids=batch, labels=batch, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.item()))
    seconds = time.perf_counter() - start
    model.eval()
    model.save_pretrained(str(model_dir), safe_serialization=True)
    for f in Path(model_dir).iterdir():
        f.chmod(0o644)
    tail = losses[-10:]
    return PretrainResult(steps, steps * batch_size * seq_len, losses[0], sum(tail) / len(tail), seconds)
