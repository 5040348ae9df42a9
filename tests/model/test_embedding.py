"""The real embedder, the content-addressed cache and the embed-through-cache pipeline."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from lorag.config import EmbeddingParams
from lorag.corpus.model import text_hash
from lorag.embedding.cache import EmbeddingCache, EmbeddingCacheError
from lorag.embedding.embedder import compute_fingerprint, load_embedder
from lorag.embedding.pipeline import embed_texts


def by_hash(texts: list[str]) -> dict[str, str]:
    return {text_hash(t): t for t in texts}


# --- embedder ----------------------------------------------------------------------------------------------


def test_vectors_are_normalised_float32_and_deterministic(embedder, embed_texts_sample):
    first = embedder.embed(embed_texts_sample)
    again = embedder.embed(embed_texts_sample)
    assert first.dtype == np.float32
    assert first.shape == (len(embed_texts_sample), embedder.dim) == (len(embed_texts_sample), 384)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(first, again, atol=1e-6)
    # Different texts give different vectors (the rows are not one repeated vector).
    assert len({row.tobytes() for row in first}) == len(embed_texts_sample)


def test_length_sorted_batches_match_plain_encode_in_input_order(embedder, embed_texts_sample):
    from sentence_transformers import SentenceTransformer

    texts = embed_texts_sample[::-1]
    order = embedder.length_order(texts)
    assert not np.array_equal(order, np.arange(len(texts))), "the sample must need reordering to test restoring it"
    progress: list[int] = []
    ours = embedder.embed(texts, on_progress=progress.append)
    plain = SentenceTransformer(str(embedder.model_dir), device="cpu").encode(
        texts, batch_size=4, normalize_embeddings=True, show_progress_bar=False
    )
    np.testing.assert_allclose(ours, plain, atol=1e-5)
    assert sum(progress) == len(texts) and len(progress) == -(-len(texts) // embedder.batch_size)


def test_empty_input_gives_an_empty_matrix(embedder):
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_fingerprint_is_stable_across_reload_and_model_move(embedder, tmp_path):
    moved = tmp_path / "moved-model"
    shutil.copytree(embedder.model_dir, moved)
    reloaded = load_embedder(EmbeddingParams(model=str(moved), threads=1, batch_size=4))
    assert reloaded is not embedder
    assert reloaded.fingerprint == embedder.fingerprint
    assert compute_fingerprint(embedder.model_dir, "torch", embedder.max_seq_length) == embedder.fingerprint


def test_fingerprint_differs_for_backend_length_and_model_contents(embedder, tmp_path):
    base = embedder.fingerprint
    assert compute_fingerprint(embedder.model_dir, "onnx-int8", embedder.max_seq_length) != base
    assert compute_fingerprint(embedder.model_dir, "torch", 128) != base
    other = tmp_path / "other-model"
    shutil.copytree(embedder.model_dir, other)
    pooling = other / "1_Pooling" / "config.json"
    pooling.write_text(pooling.read_text().replace('"pooling_mode_cls_token": false', '"pooling_mode_cls_token": true'))
    assert compute_fingerprint(other, "torch", embedder.max_seq_length) != base


def test_tokenizer_limit_is_the_models_window(embedder):
    # The chunker reads the limit from the tokenizer: it must be what the model reads (256), not the
    # tokenizer file's 512.
    assert embedder.tokenizer.model_max_length == embedder.max_seq_length == 256
    assert embedder.tokenizer.is_fast


# --- cache -------------------------------------------------------------------------------------------------


def test_cache_round_trip_is_exact_and_keyed_by_fingerprint(tmp_path):
    rng = np.random.default_rng(0)
    vectors = {text_hash(f"text {i}"): rng.standard_normal(384).astype(np.float32) for i in range(1200)}
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    assert cache.put_many("fp-a", vectors) == 1200
    got = cache.get_many("fp-a", [*vectors, text_hash("never stored")])
    assert got.keys() == vectors.keys()  # more than one IN-chunk of keys, the miss simply absent
    for key, vec in vectors.items():
        assert got[key].dtype == np.float32 and np.array_equal(got[key], vec)
    assert cache.get_many("fp-b", vectors) == {}
    stats = cache.stats()
    assert stats.rows == 1200 and stats.by_fingerprint == {"fp-a": 1200} and stats.file_bytes > 1200 * 384 * 4


def test_cache_refuses_a_second_dim_for_one_fingerprint(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.put_many("fp", {"a": np.ones(4, np.float32)})
    with pytest.raises(EmbeddingCacheError, match="4-dim"):
        cache.put_many("fp", {"b": np.ones(8, np.float32)})
    with pytest.raises(ValueError, match="shape"):
        cache.put_many("fp", {"c": np.ones((2, 4), np.float32)})
    assert cache.stats().rows == 1  # nothing of the refused writes landed


def test_cache_survives_reopen_and_a_writer_killed_mid_transaction(tmp_path):
    path = tmp_path / "c.sqlite"
    EmbeddingCache(path).put_many("fp", {"kept": np.arange(4, dtype=np.float32)})
    # A second process starts a write and dies before committing (os._exit: no cleanup, no rollback).
    child = (
        "import os, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('BEGIN IMMEDIATE')\n"
        "conn.execute(\"INSERT INTO embeddings VALUES ('fp', 'lost', 4, zeroblob(16))\")\n"
        "os._exit(1)\n"
    )
    assert subprocess.run([sys.executable, "-c", child, str(path)]).returncode == 1
    reopened = EmbeddingCache(path)
    assert set(reopened.get_many("fp", ["kept", "lost"])) == {"kept"}
    reopened.put_many("fp", {"after": np.ones(4, np.float32)})  # no lock left behind
    assert reopened.stats().rows == 2
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --- pipeline ----------------------------------------------------------------------------------------------


def test_embed_texts_second_run_computes_nothing(embedder, embed_texts_sample, tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    texts = by_hash(embed_texts_sample)
    first = embed_texts(embedder, cache, texts)
    assert (first.computed, first.reused) == (len(texts), 0)
    assert first.vectors.keys() == texts.keys()
    second = embed_texts(embedder, EmbeddingCache(tmp_path / "c.sqlite"), texts)
    assert (second.computed, second.reused) == (0, len(texts))
    for key in texts:
        assert np.array_equal(first.vectors[key], second.vectors[key])
    direct = embedder.embed(list(texts.values()))
    np.testing.assert_allclose(np.stack([first.vectors[k] for k in texts]), direct, atol=1e-5)


def test_embed_texts_with_a_partial_cache_computes_only_misses(embedder, embed_texts_sample, tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    texts = by_hash(embed_texts_sample)
    embed_texts(embedder, cache, by_hash(embed_texts_sample[:5]))
    progress: list[int] = []
    result = embed_texts(embedder, cache, texts, on_progress=progress.append)
    assert (result.computed, result.reused) == (len(texts) - 5, 5)
    assert progress[0] == 5 and sum(progress) == len(texts)
    assert cache.stats().rows == len(texts)


def test_embed_texts_keeps_finished_batches_when_interrupted(embedder, embed_texts_sample, tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    texts = by_hash(embed_texts_sample)

    def crash_after_first_batch(n: int) -> None:
        raise KeyboardInterrupt("killed after one batch")

    with pytest.raises(KeyboardInterrupt):
        embed_texts(embedder, cache, texts, on_progress=crash_after_first_batch)
    assert cache.stats().rows == embedder.batch_size
    resumed = embed_texts(embedder, cache, texts)
    assert (resumed.computed, resumed.reused) == (len(texts) - embedder.batch_size, embedder.batch_size)


def test_embed_texts_refuses_keys_that_are_not_the_text_hash(embedder, tmp_path):
    with pytest.raises(ValueError, match="text_hash"):
        embed_texts(embedder, EmbeddingCache(tmp_path / "c.sqlite"), {"not-a-hash": "some text"})


# --- onnx-int8 ---------------------------------------------------------------------------------------------


def test_onnx_int8_is_close_to_torch_and_exported_once(embedder, embed_texts_sample, tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="onnx-int8 needs the optional extra: pip install 'lorag[onnx]'")
    pytest.importorskip("onnx", reason="onnx-int8 needs the optional extra: pip install 'lorag[onnx]'")
    root = tmp_path_factory.mktemp("onnx-project")
    params = EmbeddingParams(backend="onnx-int8", threads=1, batch_size=4)
    quantized = load_embedder(params, root=root)
    exported = list((root / ".lorag" / "onnx").glob("*/model.int8.onnx"))
    assert len(exported) == 1 and quantized.fingerprint[:24] == exported[0].parent.name
    assert quantized.fingerprint != embedder.fingerprint and quantized.dim == embedder.dim
    got = quantized.embed(embed_texts_sample)
    want = embedder.embed(embed_texts_sample)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = (got * want).sum(axis=1)
    assert cosines.min() >= 0.98, f"int8 drifted from fp32: {np.round(cosines, 4)}"
    assert cosines.mean() >= 0.99
    # A second load (other batch size: not the process cache) finds the export instead of redoing it.
    mtime = exported[0].stat().st_mtime_ns
    again = load_embedder(EmbeddingParams(backend="onnx-int8", threads=1, batch_size=8), root=root)
    assert again is not quantized and again.fingerprint == quantized.fingerprint
    assert exported[0].stat().st_mtime_ns == mtime
    # Vectors do not depend on how texts are grouped into batches (batch size 8 here, 4 above).
    np.testing.assert_allclose(again.embed(embed_texts_sample[::-1])[::-1], got, atol=1e-6)
