"""search.query_embedder: onnx-int8 embeds queries with the int8 export of the index's model, checks the index
against the index embedder's fingerprint read from the model files, and so never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lorag.config import EmbeddingParams, load_params
from lorag.embedding.embedder import embedder_fingerprint, load_embedder
from lorag.reindex.run import run_reindex

pytestmark = pytest.mark.slow  # one ONNX export (~10 s) and a fresh interpreter


def test_fingerprint_from_files_equals_the_loaded_models() -> None:
    params = EmbeddingParams(threads=1)
    assert embedder_fingerprint(params) == load_embedder(params).fingerprint


def test_int8_queries_find_the_same_passage_without_importing_torch(make_project) -> None:
    pytest.importorskip("onnxruntime", reason="onnx-int8 needs the optional extra: pip install 'lorag[onnx]'")
    root = make_project({"embedding": {"threads": 1}})
    params = load_params(root / "params.yaml")
    run_reindex(params)
    # The one-time export (next to the embedding cache) needs torch; every search after it does not.
    load_embedder(params.embedding.model_copy(update={"backend": "onnx-int8"}), root=params.root)
    probe = (
        "import json, sys\n"
        "from lorag.config import load_params\n"
        "from lorag.retrieval.search import search\n"
        f"params = load_params({str(root / 'params.yaml')!r}, sys.argv[1:])\n"
        "hits = search(params, 'how do I install it', top_k=2, mode='dense')\n"
        "print(json.dumps({'doc': hits[0].doc_id, 'torch': 'torch' in sys.modules}))\n"
    )
    runs = {}
    for choice in ("index", "onnx-int8"):
        out = subprocess.run([sys.executable, "-c", probe, f"search.query_embedder={choice}"], capture_output=True,
                             text=True, check=True, cwd=root)
        runs[choice] = json.loads(out.stdout.strip().splitlines()[-1])

    assert runs["index"] == {"doc": "guide/setup.md", "torch": True}
    assert runs["onnx-int8"] == {"doc": "guide/setup.md", "torch": False}
