"""Greedy generation with the base model and any number of named LoRA adapters, loaded once per process.

One base model is loaded per process and every adapter (challenger, champion, a version) is attached to it by
name, so `lorag ask` and the evaluation matrix switch configurations without reloading weights: the base rows run
with the adapters disabled, the adapter rows with one adapter active.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorag.answer.format import chat_turns

if TYPE_CHECKING:
    from lorag.config import Params


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    generated_tokens: int
    seconds: float


class AnswerModel:
    """The base model plus named adapters; `generate(prompt, adapter=None)` runs the base alone."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.adapters: dict[str, str] = {}  # name -> adapter folder
        self._lock = threading.Lock()  # set_adapter is model state: one generation at a time

    def add_adapter(self, name: str, adapter_dir: Path) -> None:
        """Attach an adapter once (same name and folder again: nothing to do).

        A name attached from another folder is replaced: in a long-lived process (a served model, the monitor,
        a test session) "v1" of one registry or project is not "v1" of another, and the folder is the truth.
        """
        from peft import PeftModel

        if self.adapters.get(name) == str(adapter_dir):
            return
        with self._lock:
            if name in self.adapters:
                self.model.delete_adapter(name)
                del self.adapters[name]
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(str(adapter_dir), adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, str(adapter_dir), adapter_name=name)
            self.model.eval()
            self.adapters[name] = str(adapter_dir)

    @contextmanager
    def using(self, adapter: str | None) -> Iterator[None]:
        """Hold the model with `adapter` active (None: every adapter disabled, the base model alone)."""
        if adapter is not None and adapter not in self.adapters:
            raise KeyError(f"adapter {adapter!r} is not attached (attached: {sorted(self.adapters)})")
        with self._lock:
            if adapter is not None:
                self.model.set_adapter(adapter)
            with self.model.disable_adapter() if adapter is None and self.adapters else nullcontext():
                yield

    def generate(self, prompt: str, adapter: str | None, max_new_tokens: int) -> Generation:
        """Greedy reply to one user turn, special tokens removed (as adapter_eval.generate_reply)."""
        import torch

        enc = self.tokenizer.apply_chat_template(chat_turns(prompt), add_generation_prompt=True, return_dict=True,
                                                 return_tensors="pt")
        prompt_tokens = int(enc["input_ids"].shape[1])
        with self.using(adapter):
            start = time.perf_counter()
            with torch.no_grad():
                out = self.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                                          pad_token_id=self.tokenizer.pad_token_id,
                                          eos_token_id=self.tokenizer.eos_token_id)
            seconds = time.perf_counter() - start
        new = out[0, prompt_tokens:]
        return Generation(self.tokenizer.decode(new, skip_special_tokens=True), prompt_tokens, int(new.shape[0]),
                          seconds)


_MODELS: dict[str, AnswerModel] = {}
_MODELS_LOCK = threading.Lock()


def answer_model(params: Params) -> AnswerModel:
    """The process's AnswerModel for `train.base_model` (loaded on first use, then reused)."""
    import torch

    from lorag.training.base_model import BaseModelRef

    ref = BaseModelRef.from_params(params)
    key = f"{ref.source}@{ref.revision}"
    with _MODELS_LOCK:
        if key not in _MODELS:
            torch.set_num_threads(params.train.threads_per_process)
            tokenizer = ref.load_tokenizer()
            model = ref.load_model().eval()
            _MODELS[key] = AnswerModel(model, tokenizer)
        return _MODELS[key]
