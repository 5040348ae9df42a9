"""Examples -> token rows for causal-LM LoRA training: chat template, loss mask, packing, padding, batch order.

The loss is on assistant tokens only (labels are -100 elsewhere), taken from the template's `{% generation %}`
markers. Examples longer than `max_seq_len` are refused and reported, never cut silently: a truncated response
teaches the model to stop mid-sentence. Packing puts several examples in one row with `position_ids` restarting
at 0 for each; transformers then builds a block-diagonal mask, but only when no attention mask and no KV cache
are passed (so the model must run with `use_cache=False`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorag.config import Params
from lorag.training.examples import Example, chat_messages, read_examples

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Encoded:
    id: str
    input_ids: list[int]
    labels: list[int]


@dataclass(frozen=True)
class Skipped:
    id: str
    reason: str


@dataclass
class Row:
    """One training row: one example, or several packed back to back."""

    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)
    example_ids: list[str] = field(default_factory=list)


def train_examples_path(params: Params) -> Path:
    """The one place that decides which file training reads."""
    return params.path(params.examples.dir) / "train.jsonl"


def load_examples(path: Path) -> list[Example]:
    """Read a JSONL file of examples; any unreadable line is an error here (validation quarantines them first)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no examples file. Build and validate the examples first.")
    examples, bad = read_examples(path)
    if bad:
        shown = "; ".join(f"line {b.line_no}: {b.reason}" for b in bad[:5])
        raise ValueError(
            f"{path}: {len(bad)} invalid example line(s) ({shown}). Validate the examples first so bad "
            "lines are quarantined before training."
        )
    return examples


def to_messages(example: Example, system: str | None = None) -> list[dict[str, str]]:
    """The chat turns of `lorag.training.examples.chat_messages` (the serving prompt format), plus a system turn."""
    messages = [{"role": "system", "content": system}] if system else []
    return messages + chat_messages(example)


def encode_example(tokenizer: Any, example: Example, system: str | None = None) -> Encoded:
    """Token ids and labels: labels equal the ids on assistant tokens and are -100 everywhere else."""
    out = tokenizer.apply_chat_template(
        to_messages(example, system), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids = list(out["input_ids"])
    mask = list(out["assistant_masks"])
    labels = [t if m else IGNORE_INDEX for t, m in zip(ids, mask, strict=True)]
    return Encoded(example.id, ids, labels)


def encode_examples(
    tokenizer: Any, examples: Sequence[Example], max_seq_len: int, system: str | None = None
) -> tuple[list[Encoded], list[Skipped]]:
    """Encode all examples; those that cannot be trained on come back in the second list with the reason."""
    kept: list[Encoded] = []
    skipped: list[Skipped] = []
    for ex in examples:
        if not ex.response.strip():
            skipped.append(Skipped(ex.id, "empty response"))
            continue
        enc = encode_example(tokenizer, ex, system)
        if all(label == IGNORE_INDEX for label in enc.labels):
            skipped.append(Skipped(ex.id, "no assistant tokens: the chat template lacks {% generation %} marks"))
        elif len(enc.input_ids) > max_seq_len:
            skipped.append(Skipped(ex.id, f"{len(enc.input_ids)} tokens > train.max_seq_len={max_seq_len}"))
        else:
            kept.append(enc)
    return kept, skipped


def make_rows(encoded: Sequence[Encoded], max_seq_len: int, packing: bool) -> list[Row]:
    """One row per example, or (packing) examples concatenated in order into rows of at most max_seq_len."""
    rows: list[Row] = []
    current = Row()
    for enc in encoded:
        if not packing or len(current.input_ids) + len(enc.input_ids) > max_seq_len:
            if current.input_ids:
                rows.append(current)
            current = Row()
        current.input_ids += enc.input_ids
        current.labels += enc.labels
        current.position_ids += list(range(len(enc.input_ids)))
        current.example_ids.append(enc.id)
    if current.input_ids:
        rows.append(current)
    return rows


def collate(rows: Sequence[Row], pad_id: int, packing: bool) -> dict[str, Any]:
    """Right-pad to the longest row of the batch (dynamic padding) and build tensors.

    Packed batches carry `position_ids` and NO attention mask (that is what makes transformers isolate the packed
    examples). Their pads sit after all real tokens, so causal attention never lets a real token see them, and
    their positions restart at 0 so they form a segment of their own. Unpacked batches carry the usual mask.
    """
    import torch

    width = max(len(r.input_ids) for r in rows)
    ids, labels, pos, attn = [], [], [], []
    for r in rows:
        pad = width - len(r.input_ids)
        ids.append(r.input_ids + [pad_id] * pad)
        labels.append(r.labels + [IGNORE_INDEX] * pad)
        pos.append(r.position_ids + list(range(pad)))
        attn.append([1] * len(r.input_ids) + [0] * pad)
    batch: dict[str, Any] = {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
    }
    if packing:
        batch["position_ids"] = torch.tensor(pos, dtype=torch.long)
    else:
        batch["attention_mask"] = torch.tensor(attn, dtype=torch.long)
    batch["num_real_tokens"] = sum(len(r.input_ids) for r in rows)
    return batch


class BatchOrder:
    """Which rows each process reads at each micro-batch: seeded, identical on every rank, resumable.

    Each epoch is a seeded permutation of the rows, wrapped around so every global batch (batch_size x world)
    is full and every rank runs the same number of steps. Micro-batch k of the whole run is a pure function of
    (seed, k), so resuming at optimizer step s means starting at micro-batch s x grad_accum: the data order
    after a resume equals that of an uninterrupted run.
    """

    def __init__(self, n_rows: int, batch_size: int, world_size: int, rank: int, seed: int) -> None:
        if n_rows <= 0:
            raise ValueError("no training rows: every example was skipped or the examples file is empty.")
        self.n_rows, self.batch_size, self.world_size, self.rank, self.seed = n_rows, batch_size, world_size, rank, seed
        self.global_batch = batch_size * world_size
        self.micro_per_epoch = math.ceil(n_rows / self.global_batch)

    def epoch_order(self, epoch: int) -> list[int]:
        order = list(range(self.n_rows))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        need = self.micro_per_epoch * self.global_batch
        return (order * math.ceil(need / self.n_rows))[:need]

    def iter_from(self, micro_index: int) -> Iterator[tuple[int, int, list[int]]]:
        """Yield (micro_index, epoch, this rank's row indices) forever, starting at micro_index."""
        k = micro_index
        while True:
            epoch, within = divmod(k, self.micro_per_epoch)
            order = self.epoch_order(epoch)
            for j in range(within, self.micro_per_epoch):
                start = j * self.global_batch + self.rank * self.batch_size
                yield k, epoch, order[start : start + self.batch_size]
                k += 1
