"""Which adapter `--model` means: `champion`, `challenger`, `base` or a version number of the registered model,
resolved through MLflow's registry aliases, and the adapter files fetched once into a local cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorag.config import Params

ALIASES = ("champion", "challenger")
BASE = "base"


class ModelNotFound(LookupError):
    """The requested adapter is not in the registry; the message names the command that creates it."""


@dataclass(frozen=True)
class ResolvedModel:
    spec: str  # what the user asked for: champion / challenger / base / "3"
    version: str | None  # registry version; None for the base model alone
    train_run_id: str | None
    adapter_dir: Path | None  # local copy of the adapter; None for the base model alone

    @property
    def label(self) -> str:
        return "base model (no adapter)" if self.version is None else f"{self.spec} (version {self.version})"


def _missing(params: Params, spec: str) -> ModelNotFound:
    name = params.mlflow.registered_model
    if spec == "champion":
        return ModelNotFound(
            f"no version of {name!r} has the alias 'champion' yet. Create one: train and register a challenger "
            "(`lorag train --register` or `python -m flows.retrain`), then approve it (`lorag approve VERSION --by "
            "NAME`); or answer with --model challenger / --model base.")
    if spec == "challenger":
        return ModelNotFound(f"no version of {name!r} has the alias 'challenger' yet. Create one with "
                             "`lorag train --register` (or `python -m flows.retrain`); or use --model base.")
    return ModelNotFound(f"{name!r} has no version {spec}: list versions in the MLflow UI, or use --model champion, "
                         "challenger or base.")


def _client(params: Params):
    import mlflow

    mlflow.set_tracking_uri(params.tracking_uri)
    return mlflow.MlflowClient()


def find_version(params: Params, spec: str):
    """The registry ModelVersion for an alias or a version number; ModelNotFound when there is none."""
    from mlflow.exceptions import MlflowException

    client = _client(params)
    name = params.mlflow.registered_model
    try:
        if spec == "champion":
            # The champion is set on the released model, which only approvers can change (lorag.promotion); a
            # project that never released anything still reads a champion alias set on the candidates.
            from lorag.tracking.registry import champion_source

            source = champion_source(params, client)
            if source is not None:
                return client.get_model_version(name, source[1])
        if spec in ALIASES:
            return client.get_model_version_by_alias(name, spec)
        if not spec.isdigit():
            raise ValueError(f"--model {spec!r}: use champion, challenger, base or a version number")
        return client.get_model_version(name, spec)
    except MlflowException as exc:
        raise _missing(params, spec) from exc


def adapter_cache(params: Params) -> Path:
    return params.root / ".lorag" / "cache" / "adapters"


def resolve_model(params: Params, spec: str) -> ResolvedModel:
    """Resolve `spec` and make its adapter available locally (downloaded from its training run once)."""
    import mlflow

    if spec == BASE:
        return ResolvedModel(BASE, None, None, None)
    version = find_version(params, spec)
    target = adapter_cache(params) / f"{params.mlflow.registered_model}-v{version.version}-{version.run_id[:12]}"
    adapter = target / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        target.mkdir(parents=True, exist_ok=True)
        # record_training logs the adapter folder as the training run's `adapter` artifact.
        mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path="adapter", dst_path=str(target))
    return ResolvedModel(spec, str(version.version), version.run_id, adapter)


def default_spec(params: Params) -> tuple[str, str | None]:
    """(spec, note): champion when one exists, else the challenger, else the base model; note says why."""
    for spec in ALIASES:
        try:
            find_version(params, spec)
            return spec, None if spec == "champion" else _missing(params, "champion").args[0]
        except ModelNotFound:
            continue
    return BASE, f"no adapter is registered as champion or challenger: answering with the base model. " \
                 f"{_missing(params, 'challenger').args[0]}"
