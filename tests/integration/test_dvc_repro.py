"""`dvc repro` of the repository's own dvc.yaml in a fresh project: it trains, evaluates and registers, then
skips every stage when nothing changed, and a changed hyperparameter invalidates training but not the data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lorag.config import load_params
from support.behavior import REPO_ROOT, TINY_EVAL, TINY_MATRIX, TINY_TRAIN, git, merge

pytestmark = pytest.mark.slow  # the whole pipeline twice, with a real accelerate training

STAGES = ["build_base_model", "prepare_examples", "validate_examples", "train", "evaluate", "register",
          "eval_matrix"]


def _project(root: Path) -> Path:
    root.mkdir()
    shutil.copy(REPO_ROOT / "dvc.yaml", root / "dvc.yaml")
    for rel in ("sample", "infra", "mlflow", "src/lorag"):  # src: the stages list their own modules as deps
        shutil.copytree(REPO_ROOT / rel, root / rel, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    params = merge(params, {"train": TINY_TRAIN, "adapter_eval": TINY_EVAL, "evaluation": TINY_MATRIX})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    (root / ".gitignore").write_text(".lorag/\n__pycache__/\n", encoding="utf-8")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "project")
    return root


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # The stages run `python -m lorag.stages.*`: this interpreter, and the lorag sources under test.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT / "src"), env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = "1"
    dvc = Path(sys.executable).with_name("dvc")
    argv = [str(dvc)] if dvc.exists() else [sys.executable, "-m", "dvc"]
    return subprocess.run([*argv, *args], cwd=root, env=env, capture_output=True, text=True, timeout=1500,
                          check=False)


def test_repro_trains_once_then_skips_every_stage(tmp_path: Path) -> None:
    import mlflow

    root = _project(tmp_path / "project")
    assert _dvc(root, "init", "--quiet").returncode == 0

    first = _dvc(root, "repro")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first.stdout
    params = load_params(root / "params.yaml")
    run_dir = params.train.output_dir / "pipeline"
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == TINY_TRAIN["max_steps"]
    report = json.loads(params.adapter_eval.report_path.read_text())
    assert report["metrics"]["adapter.loss"] > 0 and report["citation_samples"] == TINY_EVAL["citation_samples"]
    registered = json.loads((run_dir / "registered.json").read_text())
    mlflow.set_tracking_uri(params.tracking_uri)
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias(params.mlflow.registered_model, "challenger")
    assert str(version.version) == registered["version"] == "1"
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    examples_md5 = next(o["md5"] for o in lock["prepare_examples"]["outs"])
    assert version.tags["lorag.examples_data_rev"] == examples_md5.removesuffix(".dir")
    matrix = json.loads(params.evaluation.report_path.read_text())  # the eval_matrix stage's DVC metrics file
    assert matrix["version"] == "1" and version.tags["lorag.eval_run_id"] == matrix["run_id"]
    assert matrix["metrics"]["adapter.f1"] is not None and "lorag reindex" in matrix["missing"]["adapter_rag.f1"]

    second = _dvc(root, "repro")
    assert second.returncode == 0, second.stderr[-4000:]
    for stage in STAGES:
        assert f"Stage '{stage}' didn't change, skipping" in second.stdout
    assert "Running stage" not in second.stdout
    assert len(client.search_model_versions(f"name = '{params.mlflow.registered_model}'")) == 1

    # The retrain flow's snapshot of examples.dir: the folder is a pipeline output, so it is committed into
    # dvc.lock (a .dvc file for it would make DVC refuse the whole project) and the pipeline stays up to date.
    from lorag.versioning.dvc_repo import snapshot_folder

    snap = snapshot_folder(params, params.examples.dir)
    assert snap.data_rev == examples_md5.removesuffix(".dir") and snap.git_rev == git(root, "rev-parse", "HEAD")
    assert not (root / "data" / "examples.dvc").exists() and "dvc.lock" in git(root, "ls-files").splitlines()
    assert json.loads(_dvc(root, "status", "--json").stdout) == {}

    text = (root / "params.yaml").read_text(encoding="utf-8")
    (root / "params.yaml").write_text(text.replace("learning_rate: 0.005", "learning_rate: 0.001"), encoding="utf-8")
    status = _dvc(root, "status", "--json")
    changed = set(json.loads(status.stdout))
    assert changed == {"train"}  # downstream stages follow once train re-runs; the data stages stay valid
