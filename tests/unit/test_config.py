"""params.yaml loading: defaults, overrides, and errors that name the key and the fix before any work."""

from pathlib import Path

import pytest

from lorag.config import ConfigError, load_params

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_params_file_is_valid_and_paths_resolve_against_it():
    params = load_params(REPO / "params.yaml")
    assert params.root == REPO
    assert params.path(params.corpus.docs_dir) == REPO / "data" / "docs"
    assert params.tracking_uri == f"sqlite:///{REPO / '.lorag' / 'mlflow.db'}"


def test_overrides_are_typed_and_win(tmp_path):
    (tmp_path / "params.yaml").write_text("search:\n  top_k: 3\n")
    params = load_params(tmp_path / "params.yaml", ["search.top_k=9", "index.backend=weaviate", "train.lora.r=4"])
    assert (params.search.top_k, params.index.backend, params.train.lora.r) == (9, "weaviate", 4)


def test_unknown_key_names_the_key_and_suggests_the_fix(tmp_path):
    (tmp_path / "params.yaml").write_text("embeding:\n  batch_size: 8\n")
    with pytest.raises(ConfigError) as err:
        load_params(tmp_path / "params.yaml")
    assert "embeding" in str(err.value) and "did you mean 'embedding'" in str(err.value)


def test_nested_typo_is_caught(tmp_path):
    (tmp_path / "params.yaml").write_text("index:\n  max_delete_ratoi: 0.3\n")
    with pytest.raises(ConfigError, match=r"index\.max_delete_ratoi.*did you mean 'max_delete_ratio'"):
        load_params(tmp_path / "params.yaml")


def test_bad_value_names_key_and_value(tmp_path):
    (tmp_path / "params.yaml").write_text("index:\n  backend: pinecone\n")
    with pytest.raises(ConfigError, match=r"index\.backend.*pinecone"):
        load_params(tmp_path / "params.yaml")


def test_cross_field_check(tmp_path):
    (tmp_path / "params.yaml").write_text("chunking:\n  max_tokens: 50\n  overlap_tokens: 60\n")
    with pytest.raises(ConfigError, match="overlap_tokens must be smaller"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize("text", ["corpus: [\n", "- just\n- a list\n"])
def test_broken_yaml_is_a_clear_error(tmp_path, text):
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ConfigError, match="params.yaml"):
        load_params(tmp_path / "params.yaml")


def test_malformed_override():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_params(REPO / "params.yaml", ["index.backend"])


def test_training_precision_defaults_to_auto_and_rejects_unknown_values(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  max_steps: 2\n")
    assert load_params(tmp_path).train.precision == "auto"
    assert load_params(tmp_path, ["train.precision=bf16"]).train.precision == "bf16"
    with pytest.raises(ConfigError, match=r"train\.precision.*fp8"):
        load_params(tmp_path, ["train.precision=fp8"])
