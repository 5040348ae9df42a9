"""The adapter as an MLflow model: log it on its training run, register it, tag its lineage, alias it.

Called only after training exited 0 and the evaluation ran, so a failed or killed run registers nothing.
One registered version per training run: a retry (or a re-evaluation of the same adapter) finds the version
already made from that run and refreshes its tags and alias instead of adding a twin. Registry state lives in
aliases (`challenger` here; promotion to `champion` is a gate's job), never in deprecated stages.

Lineage: the same keys go to the version's tags (`lorag.<key>`) and to `lineage.json` on the training run,
tying model version -> training data revision -> index version -> eval run.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.evaluation.adapter_eval import EvalReport

CHALLENGER = "challenger"
MODEL_NAME_IN_RUN = "adapter"
MODEL_CODE = "adapter_model.py"
# What the pyfunc imports at load time; pinned to this environment's versions (inference would take ~11 s
# and guess wrong).
_SERVING_PACKAGES = ("mlflow", "torch", "transformers", "peft", "accelerate", "safetensors", "tokenizers")


@dataclass(frozen=True)
class Registered:
    name: str
    version: str  # always a string: MLflow returns int from a local store and str over REST
    model_uri: str  # models:/m-<id> of the logged model
    train_run_id: str
    eval_run_id: str
    lineage: dict[str, Any]

    def summary(self) -> dict[str, str]:
        return {"model": self.name, "version": self.version, "alias": CHALLENGER, "train_run_id": self.train_run_id,
                "eval_run_id": self.eval_run_id}


def pip_requirements() -> list[str]:
    return [f"{pkg}=={metadata.version(pkg)}" for pkg in _SERVING_PACKAGES]


def model_code_path(params: Params) -> Path:
    """mlflow/adapter_model.py of the project, else of the lorag source tree this code runs from."""
    import lorag

    for root in (params.root, Path(lorag.__file__).resolve().parents[2]):
        candidate = root / "mlflow" / MODEL_CODE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no mlflow/{MODEL_CODE} in {params.root} or next to the lorag sources: copy it from the lorag "
        "repository into your project's mlflow/ folder (it is the pyfunc MLflow serves the adapter with)."
    )


def index_lineage(params: Params) -> dict[str, Any]:
    """The published index at registration time (collection and data_rev); None values when none is published."""
    from lorag.index.stores import published_state

    empty = {"index_name": params.index.name, "index_collection": None, "index_data_rev": None}
    state = published_state(params)
    if state is None:
        return empty
    return {**empty, "index_collection": state.get("collection"), "index_data_rev": state.get("data_rev")}


def build_lineage(params: Params, train_run: Any, eval_run_id: str, report: EvalReport) -> dict[str, Any]:
    from lorag.tracking.training import TAG_EXAMPLES_REV, TAG_GIT_COMMIT

    tags = train_run.data.tags
    return {
        "train_run_id": train_run.info.run_id,
        "eval_run_id": eval_run_id,
        "base_model": tags.get("lorag.base_model") or params.train.base_model,
        "base_model_revision": tags.get("lorag.base_model_revision") or None,
        "examples_data_rev": _none(tags.get(TAG_EXAMPLES_REV)),
        "git_commit": _none(tags.get(TAG_GIT_COMMIT)),
        **index_lineage(params),
        **{f"eval.{k}": v for k, v in report.metrics().items()},
    }


def _none(value: str | None) -> str | None:
    return None if value in (None, "", "none") else value


def _artifacts(params: Params, adapter_dir: Path) -> dict[str, str]:
    """The adapter; plus the base model itself when it is the small demo model (a self-contained version)."""
    from lorag.training.base_model import BaseModelRef

    artifacts = {"adapter": str(adapter_dir)}
    ref = BaseModelRef.from_params(params)
    if ref.is_demo:
        artifacts["base_model"] = ref.source
    return artifacts


def log_adapter_model(params: Params, train_run_id: str, adapter_dir: Path) -> str:
    """Log the adapter as a pyfunc model on its training run; returns the `models:/m-<id>` URI."""
    import mlflow

    from lorag.tracking import configure_mlflow

    from lorag.training.base_model import BaseModelRef

    configure_mlflow(params, params.mlflow.train_experiment)
    ref = BaseModelRef.from_params(params)  # a serving host loads the same folder or hub id + revision
    config = {"base_model": ref.source, "base_model_revision": ref.revision,
              "max_new_tokens": params.adapter_eval.max_new_tokens}
    with mlflow.start_run(run_id=train_run_id):
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN, python_model=str(model_code_path(params)),
            artifacts=_artifacts(params, adapter_dir), model_config=config, pip_requirements=pip_requirements(),
        )
    return info.model_uri


def _existing_version(client: Any, name: str, train_run_id: str) -> str | None:
    found = client.search_model_versions(f"name = '{name}' and run_id = '{train_run_id}'")
    return str(max(int(v.version) for v in found)) if found else None


def register_adapter(params: Params, train_run_id: str, adapter_dir: Path, report: EvalReport,
                     plot: Path | None = None) -> Registered:
    """Record the evaluation, register the run's adapter (once), tag its lineage, set `challenger` on it."""
    import mlflow

    from lorag.tracking.training import record_evaluation
    from lorag.tracking import configure_mlflow

    configure_mlflow(params, params.mlflow.train_experiment)
    client = mlflow.MlflowClient()
    train_run = client.get_run(train_run_id)  # raises at once if the id is not on this tracking server
    eval_run_id = record_evaluation(params, train_run_id, report, plot)
    name = params.mlflow.registered_model
    version = _existing_version(client, name, train_run_id)
    if version is None:
        model_uri = log_adapter_model(params, train_run_id, Path(adapter_dir))
        version = str(mlflow.register_model(model_uri, name).version)
    else:
        model_uri = str(client.get_model_version(name, version).source)
    lineage = {"model_name": name, "model_version": version, "model_uri": model_uri,
               **build_lineage(params, train_run, eval_run_id, report), "started_by": started_by()}
    for key, value in lineage.items():
        if key not in ("model_name", "model_version"):
            client.set_model_version_tag(name, version, f"lorag.{key}", "none" if value is None else str(value))
    client.log_dict(train_run_id, lineage, "lineage.json")
    client.log_dict(eval_run_id, lineage, "lineage.json")
    client.set_registered_model_alias(name, CHALLENGER, version)
    return Registered(name, version, model_uri, train_run_id, eval_run_id, lineage)


# -- promotion: the released model, its aliases and the people behind a version ---------------------------------
# Measured on MLflow 3.17.2 with `--app-name basic-auth`: EDIT on a registered model lets a user register versions
# AND set or delete its aliases, so one registered model cannot keep trainers from moving `champion`. Candidates
# live in `mlflow.registered_model` (trainers: EDIT); a promotion copies the approved version into
# `promotion.released_model` (approvers only: EDIT/MANAGE there, READ for everyone else), where `champion` lives.
CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous-champion"
TAG_SOURCE_VERSION = "lorag.source_version"  # on a released version: the candidate version it was copied from
USER_ENV = "LORAG_USER"


def started_by() -> str:
    """Who is running this process: $LORAG_USER, else the OS user (recorded as `lorag.started_by`)."""
    import getpass
    import os

    return os.environ.get(USER_ENV) or getpass.getuser()


def registry_client(params: Params) -> Any:
    import mlflow

    from lorag.tracking import configure_mlflow

    configure_mlflow(params, params.mlflow.train_experiment)
    return mlflow.MlflowClient()


def alias_version(client: Any, name: str, alias: str) -> Any | None:
    """The ModelVersion `alias` points at, or None when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def champion_source(params: Params, client: Any | None = None) -> tuple[str, str] | None:
    """(released version, candidate version) of the current champion, or None when there is none."""
    client = client or registry_client(params)
    found = alias_version(client, params.promotion.released_model, CHAMPION)
    if found is None:
        return None
    return str(found.version), str((found.tags or {})[TAG_SOURCE_VERSION])


def release_copy(params: Params, client: Any, version: str) -> str:
    """The released model's copy of candidate `version` (made once; a retry finds it); returns its version."""
    return copy_once(client, params.mlflow.registered_model, version, params.promotion.released_model,
                     TAG_SOURCE_VERSION, "approved adapter versions (lorag promotion)")


def copy_once(client: Any, source: str, version: str, target: str, source_tag: str, description: str) -> str:
    """`target`'s copy of `source` version `version`, tagged `source_tag`=version: made once (creating `target`
    when needed), found again by that tag on a retry. Returns the copy's version in `target`."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(target)
    except MlflowException:
        client.create_registered_model(target, description=description)
    found = client.search_model_versions(f"name = '{target}' and tags.`{source_tag}` = '{version}'")
    if found:
        return str(max(int(v.version) for v in found))
    copied = client.copy_model_version(f"models:/{source}/{version}", target)
    client.set_model_version_tag(target, str(copied.version), source_tag, str(version))
    return str(copied.version)


def released_for(params: Params, client: Any, version: str) -> str | None:
    found = client.search_model_versions(
        f"name = '{params.promotion.released_model}' and tags.`{TAG_SOURCE_VERSION}` = '{version}'")
    return str(max(int(v.version) for v in found)) if found else None
