"""One base model per process, adapters attached by name: a name re-attached from another folder is replaced.

In a long-lived process (a served model, the monitor flow, a test session) version "v1" of one registry is not
"v1" of another; generating with the name must use the folder it was attached from last.
"""

from __future__ import annotations

import torch

from lorag.answer.generate import AnswerModel


def _adapter(base_dir, out, seed):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(out)
    return out


def test_reattaching_a_name_from_another_folder_replaces_the_adapter(sample_base_model, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    first = _adapter(sample_base_model, tmp_path / "a", seed=1)
    second = _adapter(sample_base_model, tmp_path / "b", seed=2)
    model = AnswerModel(AutoModelForCausalLM.from_pretrained(sample_base_model), AutoTokenizer.from_pretrained(sample_base_model))
    ids = torch.tensor([[5, 6, 7, 8]])

    def logits():
        with model.using("v1"), torch.no_grad():
            return model.model(input_ids=ids).logits

    model.add_adapter("v1", first)
    from_first = logits()
    model.add_adapter("v1", first)  # same folder again: nothing to do
    assert torch.equal(logits(), from_first)
    model.add_adapter("v1", second)
    assert model.adapters == {"v1": str(second)}
    assert not torch.allclose(logits(), from_first)
