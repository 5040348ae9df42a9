"""Which accelerate config a run uses, and the mixed precision it trains in.

`train.precision: auto` (the default) follows the accelerate config and the hardware: the config's
`mixed_precision` on a GPU that supports it (bf16 needs Ampere or newer; an older card gets fp16 instead),
full fp32 on CPU. An explicit fp32 / bf16 / fp16 always wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from lorag.config import Params

MixedPrecision = Literal["no", "bf16", "fp16"]
_EXPLICIT: dict[str, MixedPrecision] = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}


def accelerate_dirs(params: Params) -> list[Path]:
    """Where `train.accelerate_config` names are looked up: the project's infra/accelerate, then the one
    shipped with the lorag sources (so a params file outside the project folder still finds the configs)."""
    import lorag

    shipped = Path(lorag.__file__).resolve().parents[2] / "infra" / "accelerate"
    own = params.root / "infra" / "accelerate"
    return [own] if own == shipped else [own, shipped]


def accelerate_config(params: Params) -> tuple[Path, dict[str, Any]]:
    """(path, contents) of `<dir>/<train.accelerate_config>.yaml`; an unknown name lists the choices."""
    import yaml

    name = params.train.accelerate_config
    folders = accelerate_dirs(params)
    for folder in folders:
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path, yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    known = sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})
    raise ValueError(
        f"train.accelerate_config={name!r}: no {name}.yaml in {', '.join(str(f) for f in folders)}. "
        f"Available: {', '.join(known) or 'none (is infra/accelerate missing?)'}."
    )


def resolve_precision(requested: str, config: Mapping[str, Any], *, cuda: bool, bf16_ok: bool) -> MixedPrecision:
    """The `Accelerator(mixed_precision=...)` value for `train.precision` under this config and hardware.

    A pure function of its inputs, so the rule is tested without a GPU.
    """
    if requested != "auto":
        return _EXPLICIT[requested]
    if not cuda or config.get("use_cpu"):
        return "no"  # CPUs here have no bf16 units: autocast would only slow training down
    wanted = str(config.get("mixed_precision") or "no")
    if wanted == "bf16":
        return "bf16" if bf16_ok else "fp16"
    if wanted in ("no", "fp16"):
        return wanted  # type: ignore[return-value]
    raise ValueError(
        f"accelerate config mixed_precision={wanted!r} is not supported by lorag: use no, fp16 or bf16 there, "
        "or set train.precision explicitly."
    )


def training_precision(params: Params) -> MixedPrecision:
    """`resolve_precision` for this machine (inside the training process, where the devices are)."""
    import torch

    _, config = accelerate_config(params)
    cuda = torch.cuda.is_available()
    return resolve_precision(params.train.precision, config, cuda=cuda, bf16_ok=cuda and torch.cuda.is_bf16_supported())
