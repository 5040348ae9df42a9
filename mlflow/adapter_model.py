"""MLflow model-from-code: a lorag LoRA adapter served on its base model as a pyfunc (text in, text out).

MLflow copies this file into the logged model and runs it on load; it must not import lorag (a serving image
has torch, transformers, peft and mlflow only). Artifacts: "adapter" (peft folder) and, for the small demo
model, "base_model"; otherwise model_config names the base model id and revision to load.
NEVER add an __init__.py to this folder: a package named mlflow here would shadow the real one.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel


class LoraAdapterModel(PythonModel):
    """predict(list of user turns) -> list of greedy answers; `adapter_dir` is the loaded adapter folder.

    The generation length is model_config["max_new_tokens"] (set when the model is logged).
    """

    def load_context(self, context: Any) -> None:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        config = context.model_config or {}
        self.adapter_dir = context.artifacts["adapter"]
        base = context.artifacts.get("base_model") or config["base_model"]
        revision = None if "base_model" in context.artifacts else config.get("base_model_revision")
        self.max_new_tokens = int(config.get("max_new_tokens", 128))
        self.tokenizer = AutoTokenizer.from_pretrained(base, revision=revision)
        if self.tokenizer.pad_token_id is None:  # as lorag's BaseModelRef.load_tokenizer does
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(base, revision=revision, dtype=torch.float32)
        self.model = PeftModel.from_pretrained(model, self.adapter_dir).eval()

    def predict(self, context: Any, model_input: list[str], params: dict[str, Any] | None = None) -> list[str]:
        import torch

        answers = []
        for prompt in model_input:
            enc = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                                     add_generation_prompt=True, return_dict=True,
                                                     return_tensors="pt")
            with torch.no_grad():
                # Exactly lorag.evaluation.adapter_eval.generate_reply (this file cannot import lorag).
                out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False, use_cache=True,
                                          pad_token_id=self.tokenizer.pad_token_id,
                                          eos_token_id=self.tokenizer.eos_token_id)
            answers.append(self.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True))
        return answers


mlflow.models.set_model(LoraAdapterModel())
