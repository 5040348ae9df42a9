"""Pre-training the demo base model on the sample corpus: the loss falls, every weight moves, the model saved in
place loads back and is recorded in the provenance file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lorag.config import load_params

REPO = Path(__file__).resolve().parents[2]


def test_pretraining_lowers_the_loss_and_saves_in_place(sample_base_model: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from lorag.retrain.base_model import sample_texts
    from lorag.training.pretrain import pretrain

    model_dir = tmp_path / "m"
    shutil.copytree(sample_base_model, model_dir)
    before = AutoModelForCausalLM.from_pretrained(str(model_dir)).state_dict()
    texts = sample_texts(load_params(REPO / "params.yaml"))[:6]
    result = pretrain(model_dir, texts, steps=60, seq_len=32, batch_size=4, lr=1e-2, seed=0)
    assert result.steps == 60 and result.tokens == 60 * 4 * 32
    assert result.final_loss < result.first_loss - 0.5, result
    after = AutoModelForCausalLM.from_pretrained(str(model_dir)).state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before if k.endswith("q_proj.weight"))


def test_build_base_model_records_pretraining(tmp_path: Path) -> None:
    from lorag.retrain.base_model import build_base_model
    from lorag.training.base_model import BaseModelRef

    shutil.copytree(REPO / "sample", tmp_path / "sample")
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    params = load_params(tmp_path / "params.yaml", ["train.tiny_model.pretrain_steps=3",
                                                    "train.tiny_model.pretrain_seq_len=16"])
    built = build_base_model(params)
    record = BaseModelRef.from_params(params).record()["base_model_provenance"]
    assert record["pretraining"]["steps"] == 3 and record["kind"] == "lorag-tiny-llama"
    assert json.loads((built / "lorag_base.json").read_text())["pretraining"]["tokens"] == 3 * 8 * 16


def test_too_little_text_is_a_clear_error(sample_base_model: Path, tmp_path: Path) -> None:
    from lorag.training.pretrain import pretrain

    model_dir = tmp_path / "m"
    shutil.copytree(sample_base_model, model_dir)
    with pytest.raises(ValueError, match="pretrain_seq_len"):
        pretrain(model_dir, ["tiny"], steps=1, seq_len=512, batch_size=1, lr=1e-3, seed=0)
