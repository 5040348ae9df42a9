"""snapshot_docs against a real git + DVC repository in tmp_path, pushing to a real local remote."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from lorag.config import load_params
from lorag.versioning.dvc_repo import SnapshotError, hash_manifest, snapshot_docs


def _git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def _commit_count(root: Path) -> int:
    return int(_git(root, "rev-list", "--count", "HEAD"))


def _remote_has(remote: Path, md5: str) -> bool:
    return (remote / "files" / "md5" / md5[:2] / md5[2:]).is_file()


def test_first_snapshot_pushes_commits_and_matches_hash_manifest(make_project) -> None:
    root = make_project()
    params = load_params(root / "params.yaml")
    docs = params.path(params.corpus.docs_dir)

    snap = snapshot_docs(params)

    assert snap.manifest == hash_manifest(docs, params.corpus.suffixes)
    assert set(snap.manifest) == {"intro.md", "guide/setup.md", "notes.txt"}
    assert snap.manifest["intro.md"] == hashlib.md5((docs / "intro.md").read_bytes()).hexdigest()
    assert len(snap.data_rev) == 32 and not snap.data_rev.endswith(".dir")
    remote = params.path(params.versioning.remote_url)
    assert snap.pushed
    assert all(_remote_has(remote, md5) for md5 in snap.manifest.values())
    assert (remote / "files" / "md5" / snap.data_rev[:2] / f"{snap.data_rev[2:]}.dir").is_file()
    assert snap.git_rev == _git(root, "rev-parse", "HEAD")
    committed = set(_git(root, "show", "--name-only", "--format=", "HEAD").splitlines())
    assert {"data/docs.dvc", "data/.gitignore", ".dvc/config"} <= committed
    # The remote is stored relative to .dvc/, so the committed config works in a clone anywhere.
    assert "url = ../.lorag/dvc-remote" in (root / ".dvc" / "config").read_text()
    assert _git(root, "status", "--porcelain") == ""


def test_unchanged_docs_give_same_rev_and_no_new_commit(make_project) -> None:
    params = load_params(make_project() / "params.yaml")
    first = snapshot_docs(params)
    commits = _commit_count(params.root)

    second = snapshot_docs(params)

    assert second.data_rev == first.data_rev
    assert second.manifest == first.manifest
    assert second.git_rev == first.git_rev
    assert _commit_count(params.root) == commits


def test_edit_rename_delete_change_the_manifest(make_project) -> None:
    params = load_params(make_project() / "params.yaml")
    docs = params.path(params.corpus.docs_dir)
    first = snapshot_docs(params)

    (docs / "intro.md").write_text("# Intro\n\nRewritten introduction text.\n", encoding="utf-8")
    (docs / "guide" / "setup.md").rename(docs / "guide" / "install.md")
    (docs / "notes.txt").unlink()
    second = snapshot_docs(params)

    assert set(second.manifest) == {"intro.md", "guide/install.md"}
    assert second.manifest["intro.md"] != first.manifest["intro.md"]
    assert second.manifest["guide/install.md"] == first.manifest["guide/setup.md"]  # a rename keeps the hash
    assert second.data_rev != first.data_rev
    assert second.git_rev != first.git_rev
    assert second.git_rev == _git(params.root, "rev-parse", "HEAD")
    assert second.manifest == hash_manifest(docs, params.corpus.suffixes)


def test_only_dvc_files_are_committed_and_user_staging_is_kept(make_project) -> None:
    root = make_project()
    (root / "mine.txt").write_text("work in progress\n", encoding="utf-8")
    _git(root, "add", "mine.txt")

    snapshot_docs(load_params(root / "params.yaml"))

    committed = _git(root, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert "mine.txt" not in committed and "data/docs.dvc" in committed
    assert _git(root, "diff", "--cached", "--name-only").splitlines() == ["mine.txt"]


def test_escaping_symlinks_never_reach_cache_or_remote(make_project, tmp_path: Path) -> None:
    root = make_project()
    params = load_params(root / "params.yaml")
    docs = params.path(params.corpus.docs_dir)
    secret = tmp_path / "outside" / "secret.md"
    secret.parent.mkdir()
    secret.write_text("outside the project: must never be uploaded\n", encoding="utf-8")
    secret_md5 = hashlib.md5(secret.read_bytes()).hexdigest()
    (docs / "leak.md").symlink_to(secret)
    (docs / "#odd [1]*.md").symlink_to(secret)  # gitignore-special characters must be escaped in .dvcignore
    (docs / "leakdir").symlink_to(secret.parent, target_is_directory=True)
    (docs / "broken.md").symlink_to(docs / "missing.md")
    (docs / "alias.md").symlink_to(docs / "intro.md")  # inside the folder: followed like a file

    snap = snapshot_docs(params)

    assert set(snap.manifest) == {"intro.md", "guide/setup.md", "notes.txt", "alias.md"}
    assert snap.manifest == hash_manifest(docs, params.corpus.suffixes)
    assert secret_md5 not in snap.manifest.values()
    assert not _remote_has(params.path(params.versioning.remote_url), secret_md5)
    assert not _remote_has(root / ".dvc" / "cache", secret_md5)
    assert (docs / "leak.md").is_symlink() and (docs / "broken.md").is_symlink()  # the user's links untouched
    assert "/data/docs/leak.md" in (root / ".dvcignore").read_text()

    (docs / "leak.md").unlink()
    (docs / "#odd [1]*.md").unlink()
    (docs / "leakdir").unlink()
    (docs / "broken.md").unlink()
    snapshot_docs(params)
    assert "lorag" not in (root / ".dvcignore").read_text()  # the managed block goes when the links do


def test_no_git_repo_versions_without_commit(make_project) -> None:
    params = load_params(make_project(git=False) / "params.yaml")

    snap = snapshot_docs(params)

    assert snap.git_rev is None and snap.pushed
    assert (params.root / ".dvc").is_dir() and not (params.root / ".git").exists()
    assert _remote_has(params.path(params.versioning.remote_url), snap.manifest["intro.md"])


def test_git_commit_off_leaves_history_alone(make_project) -> None:
    params = load_params(make_project({"versioning": {"git_commit": False}}) / "params.yaml")
    commits = _commit_count(params.root)

    snap = snapshot_docs(params)

    assert snap.git_rev is None
    assert _commit_count(params.root) == commits
    assert (params.root / "data" / "docs.dvc").is_file()


def test_fallback_identity_only_without_one(make_project, tmp_path: Path, monkeypatch) -> None:
    root = make_project(identity=False)
    # Hide the machine's global/system git identity so the repo really has none.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "empty-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)

    snapshot_docs(load_params(root / "params.yaml"))
    assert _git(root, "log", "-1", "--format=%an <%ae>") == "lorag <lorag@localhost>"

    _git(root, "config", "user.name", "Real Person")
    _git(root, "config", "user.email", "real@example.com")
    (root / "data" / "docs" / "more.md").write_text("# More\n\nAnother page.\n", encoding="utf-8")
    snapshot_docs(load_params(root / "params.yaml"))
    assert _git(root, "log", "-1", "--format=%an <%ae>") == "Real Person <real@example.com>"


def test_git_ignored_dvc_file_is_a_clear_error(make_project) -> None:
    root = make_project()
    (root / ".gitignore").write_text("/data/\n", encoding="utf-8")

    with pytest.raises(SnapshotError, match="ignore only the folder's contents"):
        snapshot_docs(load_params(root / "params.yaml"))


def test_missing_docs_folder_is_a_clear_error(make_project) -> None:
    params = load_params(make_project({"corpus": {"docs_dir": "nowhere"}}, docs={}) / "params.yaml")
    (params.root / "nowhere").rmdir()

    with pytest.raises(SnapshotError, match="corpus.docs_dir"):
        snapshot_docs(params)


def test_push_failure_says_data_is_safe_and_how_to_fix(make_project) -> None:
    # A remote "folder" below a regular file cannot be created: the push must fail loudly, not report success.
    params = load_params(make_project({"versioning": {"remote_url": "params.yaml/remote"}}) / "params.yaml")
    commits = _commit_count(params.root)

    with pytest.raises(SnapshotError, match="versioning.remote_url"):
        snapshot_docs(params)
    assert _commit_count(params.root) == commits  # nothing committed that the remote lacks


def test_in_root_symlink_stays_a_symlink_and_its_content_is_versioned(make_project) -> None:
    # Measured with DVC 3.67: `dvc add` of the folder used to replace an in-root link by a copy of its target.
    root = make_project()
    params = load_params(root / "params.yaml")
    docs = params.path(params.corpus.docs_dir)
    (docs / "alias.md").symlink_to("intro.md")  # relative, as people make them
    (docs / "guide" / "intro-again.md").symlink_to(docs / "intro.md")  # absolute
    (docs / "shortcut").symlink_to("guide", target_is_directory=True)
    before = {p: os.readlink(docs / p) for p in ("alias.md", "guide/intro-again.md", "shortcut")}

    for _ in range(2):  # the second snapshot is a no-op add of the same folder: it must not relink either
        snap = snapshot_docs(params)
        assert {p: os.readlink(docs / p) for p in before if (docs / p).is_symlink()} == before

    intro_md5 = hashlib.md5((docs / "intro.md").read_bytes()).hexdigest()
    assert snap.manifest["alias.md"] == snap.manifest["guide/intro-again.md"] == intro_md5
    assert _remote_has(params.path(params.versioning.remote_url), intro_md5)
    assert (docs / "intro.md").is_file() and not (docs / "intro.md").is_symlink()


def test_push_sends_only_what_the_remote_lacks_and_completes_a_half_finished_push(make_project) -> None:
    """The snapshot pushes its own objects (not `dvc push` of the whole repo): new files reach the remote, and
    objects a killed push never delivered (a file and the `.dir`, which goes last) are sent by the next run."""
    params = load_params(make_project() / "params.yaml")
    docs, remote = params.corpus.docs_dir, params.path(params.versioning.remote_url)
    first = snapshot_docs(params)
    (docs / "added.md").write_text("# Added\n\nA new page about something else entirely.\n", encoding="utf-8")
    second = snapshot_docs(params)
    assert _remote_has(remote, second.manifest["added.md"])
    assert all(_remote_has(remote, md5) for md5 in second.manifest.values())

    lost = second.manifest["intro.md"]
    (remote / "files" / "md5" / lost[:2] / lost[2:]).unlink()
    (remote / "files" / "md5" / second.data_rev[:2] / f"{second.data_rev[2:]}.dir").unlink()
    third = snapshot_docs(params)

    assert third.data_rev == second.data_rev != first.data_rev
    assert _remote_has(remote, lost)
    assert (remote / "files" / "md5" / third.data_rev[:2] / f"{third.data_rev[2:]}.dir").is_file()


def test_unchanged_snapshot_only_when_this_revision_was_pushed_to_this_remote_and_committed(make_project) -> None:
    from lorag.versioning.dvc_repo import scan_docs, unchanged_snapshot

    root = make_project()
    params = load_params(root / "params.yaml")
    assert unchanged_snapshot(params, scan_docs(params)) is None  # nothing versioned yet
    first = snapshot_docs(params)
    again = unchanged_snapshot(params, scan_docs(params))
    assert again is not None and (again.data_rev, again.git_rev, again.manifest) == (
        first.data_rev, first.git_rev, first.manifest)

    (params.corpus.docs_dir / "intro.md").write_text("# Intro\n\nChanged.\n", encoding="utf-8")
    assert unchanged_snapshot(params, scan_docs(params)) is None  # a new revision: DVC has work to do

    moved = load_params(root / "params.yaml", ["versioning.remote_url=.lorag/other-remote"])
    snapshot_docs(params)
    assert unchanged_snapshot(moved, scan_docs(moved)) is None  # another remote has not received it
    pushed = snapshot_docs(moved)
    assert all(_remote_has(moved.path(moved.versioning.remote_url), m) for m in pushed.manifest.values())


def test_a_failed_push_is_never_taken_for_a_recorded_snapshot(make_project) -> None:
    from lorag.versioning.dvc_repo import scan_docs, unchanged_snapshot

    root = make_project({"versioning": {"remote_url": "params.yaml/remote"}})
    params = load_params(root / "params.yaml")
    with pytest.raises(SnapshotError):
        snapshot_docs(params)
    assert unchanged_snapshot(params, scan_docs(params)) is None
