"""Base model loading, LoRA wrapping, adapter saving and merging (peft)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lorag.config import LoraParams, Params
from lorag.training.tiny_model import PROVENANCE_FILE


def resolve_base_model(params: Params) -> str:
    """A local folder (relative to the project root) when it exists, else the name as given (a hub id)."""
    local = params.path(params.train.base_model)
    return str(local) if local.exists() else params.train.base_model


def base_model_record(params: Params) -> dict[str, Any]:
    """What the adapter was trained on, as the user named it (peft only records an absolute local path)."""
    record: dict[str, Any] = {
        "base_model": params.train.base_model,
        "base_model_revision": params.train.base_model_revision,
    }
    provenance = Path(resolve_base_model(params)) / PROVENANCE_FILE
    if provenance.is_file():
        record["base_model_provenance"] = json.loads(provenance.read_text(encoding="utf-8"))
    return record


def load_base(params: Params, device_map: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of the base model, fp32 weights; mixed precision is accelerate's job."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_base_model(params)
    revision = params.train.base_model_revision
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
        model = AutoModelForCausalLM.from_pretrained(source, revision=revision, dtype=torch.float32)
    except OSError as exc:
        raise FileNotFoundError(
            f"train.base_model={params.train.base_model!r}: cannot load it ({exc}). Build the tiny model "
            "(lorag.training.tiny_model.build_tiny_base_model), or point train.base_model at a local folder "
            "or a cached hub model."
        ) from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
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
