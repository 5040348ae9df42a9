"""DVC stage: build the tiny demo base model at `train.base_model` (random weights, nothing downloads).

    python -m lorag.stages.build_base_model --params params.yaml

Its tokenizer is trained on the sample corpus (`corpus.sample_dir`): trained on generic text instead, about 30 of
the 130 sample examples exceed `train.max_seq_len` and validation drops them. When `train.base_model` names a
real model (a hub id, a folder outside the project, or a local model lorag did not build) this is a no-op.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lorag.stages import parse_stage_args
from lorag.config import Params, load_params
from lorag.training.tiny_model import PROVENANCE_FILE, build_tiny_base_model

TINY_KIND = "lorag-tiny-llama"


def demo_model_dir(params: Params) -> Path | None:
    """The folder to build the demo model in, or None when `train.base_model` is a user's real model."""
    name = params.train.base_model
    # Hub ids look like "org/name" and never start with "." or "/": only explicit paths are ours to build.
    if not (name.startswith((".", "/", "~")) or Path(name).is_absolute()):
        return None
    target = params.path(Path(name).expanduser())
    if params.root.resolve() not in target.parents:
        return None
    provenance = target / PROVENANCE_FILE
    if target.exists() and any(target.iterdir()) and not _is_tiny(provenance):
        return None  # a model the user put there: never overwrite it
    return target


def _is_tiny(provenance: Path) -> bool:
    try:
        return json.loads(provenance.read_text(encoding="utf-8")).get("kind") == TINY_KIND
    except (OSError, ValueError):
        return False


def sample_texts(params: Params) -> list[str]:
    """The sample corpus documents (sorted by path, so the same files give the same tokenizer)."""
    folder = params.path(params.corpus.sample_dir)
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
    target = demo_model_dir(params)
    if target is None:
        return None
    texts = sample_texts(params)
    if target.exists():
        shutil.rmtree(target)  # a shape change must not leave the old weights file next to the new config
    return build_tiny_base_model(params, target, texts=texts)


def main(argv: list[str] | None = None) -> None:
    args = parse_stage_args(__doc__, "train.tiny_model.hidden_size=128", argv)
    params = load_params(args.params, args.overrides)
    built = build_base_model(params)
    if built is None:
        print(f"train.base_model={params.train.base_model!r} is not a lorag demo model: nothing to build")
    else:
        print(f"demo base model built in {built}")


if __name__ == "__main__":
    main()
