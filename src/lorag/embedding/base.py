"""What an embedder is, independent of how it was loaded (torch or ONNX Runtime): the `Embedder` class and the
fingerprint that names its vectors. Both backends build on this module; neither imports the other's loader.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Bump when the way vectors are computed changes (pooling, normalisation, quantisation recipe): old caches
# then miss instead of returning vectors of another recipe.
RECIPE_VERSION = 1
# Files that decide the vectors. Hub snapshots also carry onnx/, openvino/ and TF/Flax weights: those are not
# read by either backend, and hashing them would cost seconds for nothing.
_HASHED_SUFFIXES = {".json", ".txt", ".safetensors", ".bin", ".model", ".py"}
_SKIPPED_DIRS = {"onnx", "openvino"}

EncodeBatch = Callable[[list[str]], np.ndarray]


class EmbeddingError(RuntimeError):
    """The embedding model cannot be found or loaded. The message says how to fix it."""


class Embedder:
    """A loaded embedding model. Build it with `load_embedder`; `embed` is the only thing callers run."""

    def __init__(
        self,
        *,
        encode_batch: EncodeBatch,
        tokenizer: Any,
        dim: int,
        max_seq_length: int,
        fingerprint: str,
        backend: str,
        batch_size: int,
        model_dir: Path,
    ) -> None:
        self._encode_batch = encode_batch
        self.tokenizer = tokenizer  # Hugging Face fast tokenizer; the chunker counts tokens with it
        self.dim = dim
        self.max_seq_length = max_seq_length
        self.fingerprint = fingerprint
        self.backend = backend
        self.batch_size = batch_size
        self.model_dir = model_dir

    def __repr__(self) -> str:
        return f"Embedder(backend={self.backend!r}, dim={self.dim}, fingerprint={self.fingerprint[:12]}...)"

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens each text will occupy in a batch (special tokens included, capped at max_seq_length)."""
        if not texts:
            return np.zeros(0, dtype=np.int64)
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_seq_length, verbose=False)["input_ids"]
        return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(texts))

    def length_order(self, texts: Sequence[str]) -> np.ndarray:
        """Indices of `texts`, longest first: batches of similar length waste little compute on padding."""
        # Stable sort so equal lengths keep their input order (deterministic batches, deterministic vectors).
        return np.argsort(-self.token_lengths(texts), kind="stable")

    def embed(self, texts: Sequence[str], on_progress: Callable[[int], None] | None = None) -> np.ndarray:
        """float32 (n, dim), L2-normalised, row i for texts[i].

        Texts are sorted by token length before batching and the order is restored after. `on_progress(k)` is
        called after each batch with the number of texts that batch finished (an increment, not a total).
        """
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = self.length_order(texts)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._encode_batch([texts[i] for i in idx])
            if on_progress is not None:
                on_progress(len(idx))
        return out



def compute_fingerprint(model_dir: Path, backend: str, max_seq_length: int, **extra: Any) -> str:
    """sha256 over model file contents, backend, sequence length and normalisation; independent of the path."""
    files = model_files(model_dir)
    if not files:
        raise EmbeddingError(f"{model_dir} holds no model files (*.json, *.safetensors, ...). Point embedding.model "
                             f"at a sentence-transformers model folder.")
    blob = {
        "files": {f.relative_to(model_dir).as_posix(): file_sha256(f) for f in files},
        "backend": backend,
        "max_seq_length": max_seq_length,
        "normalize": True,
        "recipe": RECIPE_VERSION,
        **extra,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def model_files(model_dir: Path) -> list[Path]:
    """The files that decide the vectors, in a stable order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(model_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIPPED_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.startswith(".") and path.suffix in _HASHED_SUFFIXES:
                found.append(path)
    return found


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """Content hash of one file, computed once per (path, size, mtime) in this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _FILE_HASHES[key] = digest.hexdigest()
    return _FILE_HASHES[key]
