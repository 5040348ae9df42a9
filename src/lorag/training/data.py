"""Examples -> token rows for causal-LM LoRA training: chat template, loss mask, packing, padding, batch order.

The loss is on assistant tokens only (labels are -100 elsewhere), taken from the template's `{% generation %}`
markers. Examples longer than `max_seq_len` are refused and reported, never cut silently: a truncated response
teaches the model to stop mid-sentence. Packing puts several examples in one row with `position_ids` restarting
at 0 for each, and lays a micro-batch's rows back to back without padding; transformers then keeps the examples
apart (a block-diagonal mask), but only when no attention mask and no KV cache are passed (so the model must run
with `use_cache=False`). Training uses `lora.packed_attention`, which attends within each example directly.
"""

from __future__ import annotations

import bisect
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
    """The one place that decides which file training reads: the validated split that validate_examples writes,
    so a line the suite quarantined never reaches training."""
    return params.examples.clean_dir / "train.jsonl"


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
    """One row per example, or (packing) examples packed best-fit-decreasing into rows of at most max_seq_len.

    Packing in file order leaves a row part-empty whenever the next example does not fit (with examples near half
    of max_seq_len most rows hold one): that space becomes padding, and a longer epoch. Best-fit decreasing
    (longest first, each into the fullest row it still fits) fills rows nearly to max_seq_len. Inside a row the
    examples keep their file order and rows are ordered by their first example, so the result is deterministic.
    """
    if not packing:
        return [_row([enc]) for enc in encoded]
    bins = best_fit_decreasing([len(enc.input_ids) for enc in encoded], max_seq_len)
    return [_row([encoded[i] for i in sorted(b)]) for b in sorted(bins, key=min)]


def best_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of `lengths` grouped into bins of total length <= capacity (every length must be <= capacity)."""
    free: list[tuple[int, int]] = []  # (room left, bin number), sorted: bisect finds the fullest bin that fits
    bins: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        k = bisect.bisect_left(free, (lengths[i], -1))
        if k == len(free):
            bins.append([i])
            bisect.insort(free, (capacity - lengths[i], len(bins) - 1))
        else:
            room, b = free.pop(k)
            bins[b].append(i)
            bisect.insort(free, (room - lengths[i], b))
    return bins


def _row(members: Sequence[Encoded]) -> Row:
    row = Row()
    for enc in members:
        row.input_ids += enc.input_ids
        row.labels += enc.labels
        row.position_ids += list(range(len(enc.input_ids)))
        row.example_ids.append(enc.id)
    return row


def collate(rows: Sequence[Row], pad_id: int, packing: bool) -> dict[str, Any]:
    """Tensors for one micro-batch. `num_real_tokens` counts the tokens fed to the model, padding excluded.

    Packed batches are padding-free: the rows are laid back to back in ONE row of shape (1, total tokens), with
    `position_ids` restarting at 0 for each example and NO attention mask (that is what makes transformers, and
    `lora.packed_attention`, keep the examples apart). The examples and the loss (mean over the batch's label
    tokens) are those of the rows stacked; only the pad tokens, which cost compute and teach nothing, are gone.
    Unpacked batches are right-padded to the longest row (dynamic padding) and carry the usual mask.
    """
    import torch

    n_real = sum(len(r.input_ids) for r in rows)
    if packing:
        return {
            "input_ids": torch.tensor([[t for r in rows for t in r.input_ids]], dtype=torch.long),
            "labels": torch.tensor([[t for r in rows for t in r.labels]], dtype=torch.long),
            "position_ids": torch.tensor([[t for r in rows for t in r.position_ids]], dtype=torch.long),
            "num_real_tokens": n_real,
        }
    width = max(len(r.input_ids) for r in rows)
    ids, labels, attn = [], [], []
    for r in rows:
        pad = width - len(r.input_ids)
        ids.append(r.input_ids + [pad_id] * pad)
        labels.append(r.labels + [IGNORE_INDEX] * pad)
        attn.append([1] * len(r.input_ids) + [0] * pad)
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "attention_mask": torch.tensor(attn, dtype=torch.long),
        "num_real_tokens": n_real,
    }


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
