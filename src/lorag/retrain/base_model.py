"""Build the tiny demo base model at `train.base_model` (random weights, nothing downloads).

Its tokenizer is trained on the sample corpus (`corpus.sample_dir`): trained on generic text instead, about 30 of
the 130 sample examples exceed `train.max_seq_len` and validation drops them. When `train.base_model` names a
real model (a hub id, a folder outside the project, or a local model lorag did not build) this is a no-op.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from lorag.training.base_model import BaseModelRef

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
    from lorag.training.tiny_model import build_tiny_base_model

    target = demo_model_dir(params)
    if target is None:
        return None
    texts = sample_texts(params)
    if target.exists():
        shutil.rmtree(target)  # a shape change must not leave the old weights file next to the new config
    return build_tiny_base_model(params, target, texts=texts)
