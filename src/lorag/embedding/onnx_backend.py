"""The onnx-int8 backend: an own ONNX export of the transformer, int8 weights, mean pooling in numpy.

Measured here (bench/embedding_throughput.py): faster than sentence-transformers on CPU at a mean cosine of
~0.997 to the fp32 vectors (worst ~0.984, a one-word text). The recipe matters: dynamic quantisation with
per-channel weights and `MatMulConstBOnly` (only weight matrices, never activation x activation products),
and the two projections back to the hidden size kept in fp32 (see `_outlier_matmuls`); the default
`quantize_dynamic` loses too much (cosine ~0.91). Activation scales are per tensor, so texts run one at a time
(see `encode_batch`): a text's vector then does not depend on what it was batched with.

The export happens once per model and is cached next to the embedding cache, keyed by the fingerprint.
Right after exporting, the int8 model is checked against the torch model on a few probe sentences and refused
when it drifts, so a model that quantises badly fails loudly instead of filling an index with poor vectors.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lorag.config import EmbeddingParams
from lorag.embedding.base import Embedder, EmbeddingError, compute_fingerprint

QUANTIZATION = "dynamic-qint8-per-channel-matmulconstbonly-fp32-output-dense-opset17"
MIN_PROBE_COSINE = 0.98
_OPSET = 17
_PROBES = [
    "The quick brown fox jumps over the lazy dog.",
    "To rebuild the index after changing the embedding model, run `lorag reindex --full`.",
    "Photosynthesis converts light energy into chemical energy stored in glucose molecules.",
    "The Treaty of Westphalia in 1648 ended the Thirty Years' War and reshaped the map of Europe.",
    "def add(a: int, b: int) -> int:\n    return a + b",
    "Warnung: die Datei konnte nicht gelesen werden, weil sie beschädigt ist.",
]


def load_onnx_int8(params: EmbeddingParams, model_dir: Path, work_dir: Path) -> Embedder:
    """Load (exporting first if needed) the int8 ONNX model for `model_dir`."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise EmbeddingError(
            "embedding.backend='onnx-int8' needs onnx and onnxruntime: pip install 'lorag[onnx]', "
            "or set embedding.backend=torch."
        ) from exc
    _require_mean_pooling(model_dir)
    tokenizer, max_len = _tokenizer(model_dir)
    fingerprint = compute_fingerprint(model_dir, "onnx-int8", max_len, quantization=QUANTIZATION)
    onnx_path = work_dir / "onnx" / fingerprint[:24] / "model.int8.onnx"
    if not onnx_path.exists():
        _export_locked(model_dir, onnx_path, tokenizer, params.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = params.threads or 0  # 0 = onnxruntime picks (all cores)
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    input_names = [i.name for i in session.get_inputs()]
    dim = int(session.get_outputs()[0].shape[-1])

    def encode_batch(batch: list[str]) -> np.ndarray:
        # One text per run: activation scales are per tensor, so in a padded batch a text's vector would
        # depend on its companions (cosine down to 0.97 between groupings, and padding
        # widened the scales: worst cosine to fp32 0.971 batched vs 0.984 alone). Alone it is reproducible, and on
        # this CPU batch 1 also ran ~2x faster than padded batches of 32 (no padding, cache-sized tensors).
        out = np.empty((len(batch), dim), dtype=np.float32)
        for i, text in enumerate(batch):
            enc = tokenizer([text], truncation=True, max_length=max_len, return_tensors="np")
            hidden = session.run(None, {n: enc[n].astype(np.int64) for n in input_names})[0]  # (1, T, H)
            out[i] = mean_pool_normalise(hidden, enc["attention_mask"])[0]
        return out

    return Embedder(
        encode_batch=encode_batch,
        tokenizer=tokenizer,
        dim=dim,
        max_seq_length=max_len,
        fingerprint=fingerprint,
        backend="onnx-int8",
        batch_size=params.batch_size,
        model_dir=model_dir,
    )


def mean_pool_normalise(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean over real tokens (padding excluded), then L2 norm: sentence-transformers' mean pooling + Normalize."""
    mask = attention_mask[..., None].astype(np.float32)  # (B, T, 1)
    pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)  # (B, H)
    norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return (pooled / norms).astype(np.float32)


def _require_mean_pooling(model_dir: Path) -> None:
    """This backend re-implements only mean pooling; anything else must use the torch backend."""
    modules_file = model_dir / "modules.json"
    if not modules_file.exists():
        raise EmbeddingError(f"{model_dir} is not a sentence-transformers model (no modules.json): "
                             f"embedding.backend='onnx-int8' needs one. Use embedding.backend=torch.")
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    pooling = [m for m in modules if m.get("type", "").endswith("Pooling")]
    config = model_dir / pooling[0]["path"] / "config.json" if pooling else None
    settings = json.loads(config.read_text(encoding="utf-8")) if config and config.exists() else {}
    mean = settings.get("pooling_mode_mean_tokens") or settings.get("pooling_mode") == "mean"
    others = [k for k, v in settings.items() if k.startswith("pooling_mode_") and v and k != "pooling_mode_mean_tokens"]
    if not mean or others:
        raise EmbeddingError(f"{model_dir} does not use plain mean pooling ({settings or 'no pooling config'}); "
                             f"embedding.backend='onnx-int8' supports only that. Use embedding.backend=torch.")


def _tokenizer(model_dir: Path) -> tuple[Any, int]:
    """The fast tokenizer and the sequence length sentence-transformers would use for this model."""
    # AutoTokenizer and AutoConfig import torch (~3 s of a cold `lorag search`, which needs none of it): a
    # folder with tokenizer.json is read by the fast tokenizer class itself (same ids: tokenizer.json holds the
    # whole pipeline, special tokens included) and config.json as plain JSON.
    if (model_dir / "tokenizer.json").is_file():
        from transformers import PreTrainedTokenizerFast

        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(model_dir))
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    st_config = model_dir / "sentence_bert_config.json"
    max_len = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length") if st_config.exists() else None
    config = model_dir / "config.json"
    limit = json.loads(config.read_text(encoding="utf-8")).get("max_position_embeddings") if config.exists() else None
    max_len = int(min(x for x in (max_len, tokenizer.model_max_length, limit) if x))
    tokenizer.model_max_length = max_len  # the chunker reads the limit from here
    return tokenizer, max_len


def _export_locked(model_dir: Path, onnx_path: Path, tokenizer: Any, threads: int | None) -> None:
    """Export under a file lock so two processes starting together export once; publish by atomic rename."""
    from filelock import FileLock

    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(onnx_path.parent / ".export.lock")):
        if onnx_path.exists():
            return
        tmp = onnx_path.parent / f".tmp-{os.getpid()}"
        tmp.mkdir(exist_ok=True)
        try:
            _export(model_dir, tmp, tokenizer, threads)
            os.replace(tmp / "model.int8.onnx", onnx_path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _export(model_dir: Path, out_dir: Path, tokenizer: Any, threads: int | None) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    if threads is not None:
        torch.set_num_threads(threads)
    reference = SentenceTransformer(str(model_dir), device="cpu").eval()
    transformer = reference[0].auto_model.eval()
    sample = tokenizer(["an example sentence"], return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    fp32, int8 = out_dir / "model.onnx", out_dir / "model.int8.onnx"
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            _last_hidden_state(transformer, names), tuple(sample[n] for n in names), str(fp32),
            input_names=names, output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]},
            opset_version=_OPSET, dynamo=False,
        )
    quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8,
                     op_types_to_quantize=["MatMul"], nodes_to_exclude=_outlier_matmuls(fp32),
                     extra_options={"MatMulConstBOnly": True})
    _check_quality(reference, int8, tokenizer, model_dir)


def _outlier_matmuls(fp32: Path) -> list[str]:
    """The projections back to the hidden size (after GELU, after attention): kept in fp32.

    Their inputs carry large outliers, and dynamic quantisation uses one activation scale per tensor, so
    quantising them cost the most quality: measured on this model (padded batches), worst-case cosine to
    fp32 over short and long texts went from 0.94 to 0.975 for ~10% of the int8
    speed-up. QKV and the FFN up-projection stay int8.
    """
    import onnx

    graph = onnx.load(str(fp32), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "MatMul" and "output/dense" in n.name]


def _last_hidden_state(model: Any, names: list[str]) -> Any:
    """The transformer as a module taking plain tensors (in `names` order) and returning (B, T, H)."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, tensors, strict=True))).last_hidden_state

    return LastHiddenState().eval()


def _check_quality(reference: Any, int8_path: Path, tokenizer: Any, model_dir: Path) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    got = np.empty((len(_PROBES), reference.get_embedding_dimension()), dtype=np.float32)
    for i, probe in enumerate(_PROBES):  # one at a time, as encode_batch runs them
        enc = tokenizer([probe], truncation=True, return_tensors="np")
        hidden = session.run(None, {n: enc[n].astype(np.int64) for n in names})[0]
        got[i] = mean_pool_normalise(hidden, enc["attention_mask"])[0]
    want = reference.encode(_PROBES, normalize_embeddings=True, show_progress_bar=False)
    worst = float((got * want).sum(axis=1).min())
    if worst < MIN_PROBE_COSINE:
        raise EmbeddingError(f"the int8 export of {model_dir} drifts from the fp32 model (worst cosine {worst:.3f} "
                             f"< {MIN_PROBE_COSINE}). This model does not quantise well: use embedding.backend=torch.")
