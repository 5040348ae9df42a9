"""`BaseModelRef`: the one reading of `train.base_model` (a local folder, or a hub id + revision).

A value that looks like a path (starts with `.`, `/` or `~`), or names a folder that exists under the project
root, is a local folder; anything else is a Hugging Face hub id (`org/name`) read from the local cache, since
lorag runs with HF_HUB_OFFLINE=1. Every loader (training, validation's tokenizer, evaluation, the demo-model
builder, the registry) goes through this class, so they agree on which model is meant, and a model that cannot
be loaded fails with one message that names the key, the place looked at and the fix.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params

PROVENANCE_FILE = "lorag_base.json"  # written by lorag.training.tiny_model next to the demo model's weights
TINY_KIND = "lorag-tiny-llama"


class BaseModelMissing(FileNotFoundError):
    """train.base_model cannot be loaded; the message says where lorag looked and how to fix it."""


@dataclass(frozen=True)
class BaseModelRef:
    name: str  # train.base_model as the user wrote it (what lineage records)
    revision: str | None  # hub revision; None for a local folder
    local_path: Path | None  # the resolved folder, or None for a hub id

    @classmethod
    def from_params(cls, params: Params) -> BaseModelRef:
        value, revision = params.train.base_model, params.train.base_model_revision
        path = Path(value).expanduser()
        folder = path if path.is_absolute() else (params.root / path).resolve()
        if value.startswith((".", "/", "~")) or folder.is_dir():
            return cls(value, None, folder)
        return cls(value, revision, None)

    @property
    def is_local(self) -> bool:
        return self.local_path is not None

    @property
    def source(self) -> str:
        """What `from_pretrained` gets: the absolute folder, or the hub id."""
        return str(self.local_path) if self.local_path is not None else self.name

    def provenance(self) -> dict[str, Any] | None:
        """The demo model's build record (kind, seed, shape), None for any other model."""
        if self.local_path is None or not (self.local_path / PROVENANCE_FILE).is_file():
            return None
        return json.loads((self.local_path / PROVENANCE_FILE).read_text(encoding="utf-8"))

    @property
    def is_demo(self) -> bool:
        return (self.provenance() or {}).get("kind") == TINY_KIND

    def record(self) -> dict[str, Any]:
        """What the adapter was trained on, as the user named it (peft only records an absolute local path)."""
        out: dict[str, Any] = {"base_model": self.name, "base_model_revision": self.revision}
        provenance = self.provenance()
        if provenance is not None:
            out["base_model_provenance"] = provenance
        return out

    def fingerprint(self) -> dict[str, Any]:
        """Enough to tell two base models apart without hashing gigabytes of weights: for a folder, its
        config, tokenizer and provenance files by content, and the weight files by name and size."""
        if self.local_path is None:
            return {"hub_id": self.name, "revision": self.revision}
        files: dict[str, str | int] = {}
        for f in sorted(self.local_path.glob("*")) if self.local_path.is_dir() else []:
            if f.suffix in (".json", ".jinja", ".txt", ".model"):
                files[f.name] = hashlib.sha256(f.read_bytes()).hexdigest()
            elif f.is_file():
                files[f.name] = f.stat().st_size
        return {"folder": str(self.local_path), "files": files}

    def missing(self, reason: object) -> BaseModelMissing:
        where = (f"the folder {self.local_path}" if self.local_path is not None else
                 f"the local Hugging Face cache (hub id {self.name!r}, revision {self.revision or 'main'})")
        return BaseModelMissing(
            f"train.base_model={self.name!r}: cannot load it from {where} ({reason}). Fix: for the demo model "
            "run `lorag build-base-model` (or `dvc repro build_base_model`); otherwise set train.base_model to a "
            "local model folder, or to a hub id that is already in the local Hugging Face cache (lorag runs "
            "offline, HF_HUB_OFFLINE=1, and downloads nothing)."
        )

    def _check_folder(self) -> None:
        if self.local_path is not None and not (self.local_path / "config.json").is_file():
            raise self.missing("no config.json there")

    def load_config(self) -> Any:
        from transformers import AutoConfig

        self._check_folder()
        try:
            return AutoConfig.from_pretrained(self.source, revision=self.revision)
        except OSError as exc:
            raise self.missing(exc) from exc

    def load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        self._check_folder()
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.source, revision=self.revision)
        except OSError as exc:
            raise self.missing(exc) from exc
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    def load_model(self) -> Any:
        """fp32 weights: mixed precision, where it is used, is accelerate's job."""
        import torch
        from transformers import AutoModelForCausalLM

        self._check_folder()
        try:
            return AutoModelForCausalLM.from_pretrained(self.source, revision=self.revision, dtype=torch.float32)
        except OSError as exc:
            raise self.missing(exc) from exc
