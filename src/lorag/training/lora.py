"""Base model loading, LoRA wrapping, adapter saving and merging (peft)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorag.config import LoraParams, Params
from lorag.training.base_model import BaseModelRef


def load_base(params: Params) -> tuple[Any, Any]:
    """(model, tokenizer) of `train.base_model`, fp32 weights; mixed precision is accelerate's job."""
    ref = BaseModelRef.from_params(params)
    tokenizer = ref.load_tokenizer()
    model = ref.load_model()
    # Packed rows are isolated only without a KV cache (transformers skips packed-sequence detection with one).
    model.config.use_cache = False
    return model, tokenizer


def linear_module_names(model: Any) -> list[str]:
    """Leaf names of the model's Linear layers: what `lora.target_modules` may name."""
    import torch

    return sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})


def check_target_modules(model: Any, lora: LoraParams) -> None:
    known = linear_module_names(model)
    missing = [t for t in lora.target_modules if t not in known]
    if missing:
        raise ValueError(
            f"train.lora.target_modules: {missing} not found in the base model. Its linear layers are: "
            f"{', '.join(known)}. Fix train.lora.target_modules in params.yaml."
        )


def apply_lora(model: Any, lora: LoraParams) -> Any:
    """Wrap the model with a fresh LoRA adapter; only the adapter weights are trainable afterwards."""
    from peft import LoraConfig, get_peft_model

    check_target_modules(model, lora)
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def save_adapter(peft_model: Any, out_dir: Path, state_dict: dict[str, Any] | None = None) -> Path:
    """Adapter weights and config only (safetensors), readable by others (peft writes 0600).

    `state_dict` is the gathered full state under FSDP/DeepSpeed; peft keeps only the adapter entries.
    """
    out_dir = Path(out_dir)
    peft_model.save_pretrained(out_dir, safe_serialization=True, state_dict=state_dict)
    for f in out_dir.rglob("*"):
        if f.is_file():
            f.chmod(0o644)
    return out_dir


def merge_adapter(base_model: str | Path, adapter_dir: Path, out_dir: Path, revision: str | None = None) -> Path:
    """Export: base + adapter merged into one plain transformers model (and the base tokenizer) in out_dir."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(str(base_model), revision=revision, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    out_dir = Path(out_dir)
    merged.save_pretrained(out_dir, safe_serialization=True)
    AutoTokenizer.from_pretrained(str(base_model), revision=revision).save_pretrained(out_dir)
    for f in out_dir.rglob("*"):
        if f.is_file():
            f.chmod(0o644)
    return out_dir


PACKED_ATTENTION = "lorag_packed_sdpa"
_segments_cache: list[Any] = [None, None]  # [position_ids tensor, its segments]: every layer sees the same tensor


def _segments(position_ids: Any) -> list[list[tuple[int, int]]]:
    """Per row, the (start, end) of each packed example: a new one wherever the position does not continue."""
    if _segments_cache[0] is position_ids:
        return _segments_cache[1]
    starts = position_ids[:, 1:] != position_ids[:, :-1] + 1  # the rule transformers uses to detect packing
    width = position_ids.shape[1]
    segments = []
    for row in starts.tolist():
        bounds = [0] + [i + 1 for i, s in enumerate(row) if s] + [width]
        segments.append(list(zip(bounds[:-1], bounds[1:])))
    _segments_cache[:] = [position_ids, segments]  # holding the tensor keeps its identity from being reused
    return segments


def packed_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                     scaling: float | None = None, position_ids: Any = None, **_: Any) -> tuple[Any, None]:
    """Causal SDPA inside each packed example, one call per example (a transformers attention function).

    The stock path builds a block-diagonal (L, L) mask from `position_ids`, and SDPA with a mask computes every
    block of the L x L scores; per example with `is_causal` it computes only the lower triangles of the diagonal
    blocks: the same result for a fraction of the work. q: (B, H, L, D); k, v: (B, H_kv, L, D).
    """
    import torch
    import torch.nn.functional as F

    if attention_mask is not None:
        raise ValueError(f"{PACKED_ATTENTION} takes packed rows (position_ids, no attention mask) only.")
    batch, width = query.shape[0], query.shape[2]
    segments = _segments(position_ids) if position_ids is not None else [[(0, width)]] * batch
    gqa = query.shape[1] != key.shape[1]
    rows = []
    for b, spans in enumerate(segments):
        parts = [F.scaled_dot_product_attention(query[b : b + 1, :, s:e], key[b : b + 1, :, s:e],
                                                value[b : b + 1, :, s:e], dropout_p=dropout, is_causal=True,
                                                scale=scaling, enable_gqa=gqa) for s, e in spans]
        rows.append(parts[0] if len(parts) == 1 else torch.cat(parts, dim=2))
    out = rows[0] if batch == 1 else torch.cat(rows, dim=0)
    return out.transpose(1, 2).contiguous(), None  # (B, L, H, D), as transformers' attention functions return


def use_packed_attention(model: Any) -> None:
    """Switch a (not yet LoRA-wrapped) transformers model to `packed_attention`; training only (no mask support)."""
    from transformers import AttentionInterface

    AttentionInterface.register(PACKED_ATTENTION, packed_attention)
    model.set_attn_implementation(PACKED_ATTENTION)


# Causal LMs whose logits are exactly lm_head(final hidden state): no softcapping or logit scaling to repeat.
_PLAIN_HEAD_MODELS = frozenset({"llama", "mistral", "qwen2", "qwen3", "phi3", "smollm3", "olmo2"})


def response_loss_model(peft_model: Any, label_only: bool = True) -> Any:
    """A module whose forward(input_ids, labels, position_ids=None, attention_mask=None) returns the training loss.

    The loss equals the model's own (mean cross-entropy over label tokens, labels shifted by one) but the output
    layer runs only on the positions that have a label: the response tokens, often a fifth of a row. Logits for
    prompt tokens are computed and thrown away otherwise, and the output layer (hidden x vocab) is one of the
    largest matrices. With `label_only=False`, and for architectures not known to have a plain output layer
    (softcapped or scaled logits), forward returns the model's own loss. `.peft_model` is the wrapped model.
    """
    import torch
    import torch.nn.functional as F

    from lorag.training.data import IGNORE_INDEX

    class ResponseLoss(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.peft_model = model
            causal_lm = model.get_base_model()
            self.plain_head = label_only and causal_lm.config.model_type in _PLAIN_HEAD_MODELS
            self._no_split_modules = getattr(causal_lm, "_no_split_modules", None)

        def forward(self, input_ids: Any, labels: Any, **inputs: Any) -> Any:
            if not self.plain_head:
                return self.peft_model(input_ids=input_ids, labels=labels, use_cache=False, **inputs).loss
            causal_lm = self.peft_model.get_base_model()  # LoRA layers are injected in place: they run here too
            hidden = causal_lm.get_decoder()(input_ids=input_ids, use_cache=False, **inputs).last_hidden_state
            targets = labels[:, 1:]
            keep = targets != IGNORE_INDEX
            logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep])  # (N_label_tokens, vocab)
            return F.cross_entropy(logits.float(), targets[keep])

    return ResponseLoss(peft_model)
