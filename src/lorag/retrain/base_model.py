"""Build the tiny demo base model at `train.base_model` (nothing downloads), pre-trained briefly on the sample
corpus (`train.tiny_model.pretrain_steps`) so that it writes text and the evaluation matrix has something to show.

Its tokenizer is trained on the sample corpus (`corpus.sample_dir`): trained on generic text instead, about 30 of
the 130 sample examples exceed `train.max_seq_len` and validation drops them. When `train.base_model` names a
real model (a hub id, a folder outside the project, or a local model lorag did not build) this is a no-op.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from lorag.training.base_model import PROVENANCE_FILE, BaseModelRef

if TYPE_CHECKING:
    from lorag.config import Params


def demo_model_dir(params: Params) -> Path | None:
    """The folder to build the demo model in, or None when `train.base_model` is a user's real model."""
    ref = BaseModelRef.from_params(params)
    target = ref.local_path
    if target is None or params.root.resolve() not in target.parents:
        return None
    if target.exists() and any(target.iterdir()) and not ref.is_demo:
        return None  # a model the user put there: never overwrite it
    return target


def sample_texts(params: Params) -> list[str]:
    """The sample corpus documents (sorted by path, so the same files give the same tokenizer)."""
    folder = params.corpus.sample_dir
    wanted = {s.lower() for s in params.corpus.suffixes}
    found = folder.rglob("*") if folder.is_dir() else []
    files = sorted(p for p in found if p.is_file() and p.suffix.lower() in wanted)
    if not files:
        raise FileNotFoundError(
            f"{folder}: no sample documents ({', '.join(sorted(wanted))}) to train the demo tokenizer on. "
            "Set corpus.sample_dir to the shipped sample/docs folder."
        )
    return [p.read_text(encoding="utf-8", errors="replace") for p in files]


def build_base_model(params: Params) -> Path | None:
    """Build the demo model into `train.base_model` (replacing an older demo build); None when skipped."""
    from lorag.training.pretrain import pretrain
    from lorag.training.tiny_model import build_tiny_base_model

    target = demo_model_dir(params)
    if target is None:
        return None
    texts = sample_texts(params)
    if target.exists():
        shutil.rmtree(target)  # a shape change must not leave the old weights file next to the new config
    built = build_tiny_base_model(params, target, texts=texts)
    shape = params.train.tiny_model
    if shape.pretrain_steps:
        result = pretrain(built, texts, steps=shape.pretrain_steps, seq_len=shape.pretrain_seq_len,
                          batch_size=shape.pretrain_batch_size, lr=shape.pretrain_lr, seed=params.train.seed)
        record_pretraining(built, asdict(result))
    return built


def record_pretraining(model_dir: Path, result: dict) -> None:
    """Add the pre-training facts to the demo model's provenance file (what `BaseModelRef.record` reports)."""
    path = model_dir / PROVENANCE_FILE
    provenance = json.loads(path.read_text(encoding="utf-8"))
    provenance["pretraining"] = result
    path.write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
