"""Embedding throughput: lorag's pipeline (cold cache) against plain sentence-transformers `encode`.

Same texts (real chunks of a BEIR-style corpus, cut by lorag's chunker), same model, same threads, same batch
size. Writes bench/results/embedding_throughput.json and prints one Markdown table row.

Example:
    python bench/embedding_throughput.py --corpus ../shared/data/squad-v1.1-dev/corpus.jsonl -n 600 --threads 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import lorag  # noqa: F401  (first: Hugging Face offline, telemetry off)
from lorag.config import EmbeddingParams
from lorag.corpus.chunker import chunk_document
from lorag.corpus.model import Document
from lorag.embedding.cache import EmbeddingCache
from lorag.embedding.embedder import Embedder, load_embedder
from lorag.embedding.pipeline import embed_texts

OUT = Path(__file__).parent / "results" / "embedding_throughput.json"


def load_chunks(corpus: Path, n: int, embedder: Embedder, max_tokens: int) -> list[str]:
    """The first n distinct chunks of the corpus (title + text per record, chunked like lorag indexes it)."""
    chunks: dict[str, None] = {}
    with corpus.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            text = f"# {rec.get('title', '')}\n\n{rec['text']}"
            raw = text.encode("utf-8")
            doc = Document(rec["_id"], text, "markdown", hashlib.md5(raw).hexdigest(), len(raw))
            for chunk in chunk_document(doc, embedder.tokenizer, max_tokens):
                chunks.setdefault(chunk.text)
            if len(chunks) >= n:
                break
    if len(chunks) < n:
        print(f"note: the corpus has only {len(chunks)} distinct chunks; using all of them")
    return list(chunks)[:n]


def time_lorag(embedder: Embedder, texts: list[str]) -> float:
    """texts/s through embed_texts with an empty cache (everything computed, every batch committed)."""
    from lorag.corpus.model import text_hash

    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp) / "cache.sqlite")
        started = time.perf_counter()
        result = embed_texts(embedder, cache, {text_hash(t): t for t in texts})
        seconds = time.perf_counter() - started
    assert result.computed == len(set(texts)), "the cache was not cold"
    return len(texts) / seconds


def time_plain(model_dir: Path, texts: list[str], batch_size: int) -> tuple[float, np.ndarray]:
    """texts/s of plain SentenceTransformer.encode (its defaults, our batch size), and its vectors."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    model.encode(texts[:8], batch_size=batch_size)  # warm-up: first call allocates
    started = time.perf_counter()
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return len(texts) / (time.perf_counter() - started), np.asarray(vectors)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True, help="BEIR-style corpus.jsonl (_id, title, text)")
    ap.add_argument("-n", type=int, default=2000, help="number of chunks to embed")
    ap.add_argument("--threads", type=int, default=None, help="torch/onnxruntime threads (default: all cores)")
    ap.add_argument("--batch-size", type=int, default=EmbeddingParams().batch_size)
    ap.add_argument("--max-tokens", type=int, default=200, help="chunk size in tokens, as chunking.max_tokens")
    ap.add_argument("--no-onnx", action="store_true", help="skip the onnx-int8 backend")
    args = ap.parse_args()

    params = EmbeddingParams(threads=args.threads, batch_size=args.batch_size)
    torch_embedder = load_embedder(params)
    texts = load_chunks(args.corpus, args.n, torch_embedder, args.max_tokens)
    torch_embedder.embed(texts[:8])  # warm-up
    row: dict = {"n": len(texts), "threads": args.threads or os.cpu_count(), "batch_size": args.batch_size,
                 "cpu": cpu_model(), "cores_visible": os.cpu_count()}
    row["lorag_torch_texts_per_s"] = time_lorag(torch_embedder, texts)
    row["plain_encode_texts_per_s"], plain = time_plain(torch_embedder.model_dir, texts, args.batch_size)
    row["ratio_lorag_torch_vs_plain"] = row["lorag_torch_texts_per_s"] / row["plain_encode_texts_per_s"]
    if not args.no_onnx:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            onnx = load_embedder(params.model_copy(update={"backend": "onnx-int8"}), root=Path(tmp))
            row["onnx_export_s"] = time.perf_counter() - started
            row["lorag_onnx_int8_texts_per_s"] = time_lorag(onnx, texts)
            cos = (onnx.embed(texts) * plain).sum(axis=1)
        row["ratio_onnx_int8_vs_plain"] = row["lorag_onnx_int8_texts_per_s"] / row["plain_encode_texts_per_s"]
        row["onnx_int8_cosine_to_fp32"] = {"mean": float(cos.mean()), "min": float(cos.min())}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
    print_row(row)


def print_row(row: dict) -> None:
    onnx = row.get("lorag_onnx_int8_texts_per_s")
    onnx_cell = f"{onnx:.1f} ({row['ratio_onnx_int8_vs_plain']:.2f}x)" if onnx else "-"
    print("| n | threads | batch | plain encode (texts/s) | lorag torch (texts/s) | lorag onnx-int8 (texts/s) | CPU |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {row['n']} | {row['threads']} | {row['batch_size']} | {row['plain_encode_texts_per_s']:.1f} | "
          f"{row['lorag_torch_texts_per_s']:.1f} ({row['ratio_lorag_torch_vs_plain']:.2f}x) | {onnx_cell} | "
          f"{row['cpu']} |")


if __name__ == "__main__":
    main()
