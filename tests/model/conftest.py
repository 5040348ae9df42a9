"""Shared fixtures for model tests: one tiny base model per session, tiny example sets, a tmp project root."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lorag.config import Params

REPO_ROOT = Path(__file__).resolve().parents[2]

_TOPICS = ["sessions", "engines", "migrations", "indexes", "adapters", "tokenizers", "checkpoints", "schedulers"]


def make_examples(n: int, prefix: str = "ex") -> list[dict]:
    """n small, distinct examples; every third has a context, every other one lists sources."""
    out = []
    for i in range(n):
        topic = _TOPICS[i % len(_TOPICS)]
        ex = {
            "id": f"{prefix}-{i:03d}",
            "instruction": f"What does the guide say about {topic} (question {i})?",
            "response": f"The guide explains {topic} in section {i}: read it before you change the {topic}.",
        }
        if i % 3 == 0:
            ex["context"] = f"Section {i}. The {topic} are configured once and reused by every stage."
        if i % 2 == 0:
            ex["sources"] = [f"doc-{i % 5}"]
        out.append(ex)
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lorag.training.tiny_model import build_tiny_base_model

    texts = [f"{e['instruction']} {e['response']} {e.get('context', '')}" for e in make_examples(64)]
    return build_tiny_base_model(Params(), tmp_path_factory.mktemp("tiny-model"), texts=texts)


def make_project(root: Path, model_dir: Path, n_examples: int = 24, train: dict | None = None) -> Path:
    """A project folder: params.yaml pointing at the tiny model, examples, and the repo's accelerate configs."""
    import yaml

    shutil.copytree(REPO_ROOT / "infra" / "accelerate", root / "infra" / "accelerate")
    # Straight into the validated folder training reads (examples.clean_dir): these are valid by construction.
    write_jsonl(root / ".lorag" / "examples-clean" / "train.jsonl", make_examples(n_examples))
    write_jsonl(root / ".lorag" / "examples-clean" / "eval.jsonl", make_examples(4, prefix="ev"))
    settings = {"base_model": str(model_dir), "max_seq_len": 128, "batch_size": 2, "threads_per_process": 1,
                "accelerate_config": "cpu-2proc", "max_steps": 6, "checkpoint_every": 2, "warmup_steps": 1,
                **(train or {})}
    (root / "params.yaml").write_text(yaml.safe_dump({"train": settings}), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def example_factory():
    """`make_examples(n, prefix)` (pytest's importlib mode does not let test modules import conftest)."""
    return make_examples


@pytest.fixture(scope="session")
def project_factory():
    """`make_project(root, model_dir, n_examples, train)` -> project root with params.yaml."""
    return make_project


@pytest.fixture
def examples():
    from lorag.training.data import Example

    return [Example(e["id"], e["instruction"], e["response"], e.get("context")) for e in make_examples(12)]


# --- embedding (tests/model/test_embedding.py) -------------------------------------------------------------

_EMBED_TEXTS = [
    "Install the package with pip, then run `lorag init` in an empty folder to create params.yaml.",
    "Re-indexing is incremental: only chunks whose text changed are embedded again.",
    "The embedding cache is keyed by the model fingerprint and the hash of each chunk's text, so a text that "
    "comes back after an edit is not embedded twice.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Great Expectations checks every document before it reaches the index; failures are quarantined with a reason.",
    "def chunk(text: str, max_tokens: int) -> list[str]:\n    return split_on_headings(text, max_tokens)",
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region in "
    "France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway who, under "
    "their leader Rollo, agreed to swear fealty to King Charles III of West Francia.",
    "Weaviate stores each chunk with its vector; hybrid search blends BM25 with vector similarity by alpha.",
    "A LoRA adapter trains two small matrices per target layer while the base weights stay frozen.",
    "Die Datei konnte nicht gelesen werden, weil sie beschädigt ist.",
    "ok",
    # Longer than the model's 256-token window: exercises truncation and the longest batch.
    " ".join(
        f"Section {i}: the pipeline snapshots the documents with DVC, validates them, plans the changes, "
        f"embeds only new chunks, writes them, verifies the counts and then switches the alias."
        for i in range(12)
    ),
    "Prefect retries a failed task three times before the flow run is marked failed.",
    "MLflow records the parameters, the metrics and the approval of every promoted adapter.",
]


@pytest.fixture(scope="session")
def embed_texts_sample() -> list[str]:
    """Real, varied texts (prose, code, German, a one-word text, one past the 256-token limit)."""
    return list(_EMBED_TEXTS)


@pytest.fixture(scope="session")
def embedder():
    """The real bundled all-MiniLM-L6-v2 (torch backend), loaded once per session, one thread."""
    from lorag.config import EmbeddingParams
    from lorag.embedding.embedder import load_embedder

    return load_embedder(EmbeddingParams(threads=1, batch_size=4))
