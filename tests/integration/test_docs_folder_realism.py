"""A docs folder as real sites have them (Hugo/Jekyll pages with front matter and shortcodes, images, site
configuration, OWNERS files, a legacy Latin-1 page, an in-root symlink), re-indexed end to end with real DVC,
Great Expectations, LanceDB and the embedding model. What the user is told must be true.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lorag.reindex.run import run_reindex
from support.reindex import params_of, published_rows

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hugo_docs"
PAGES = {"_index.md", "docs/install/_index.md", "docs/inspections.md", "docs/wintering.md", "docs/glossary.txt"}
OTHERS = {"OWNERS", "config.yaml", "docs/install/_meta.yaml", "docs/install/wiring.png", "images/hive.svg",
          "images/logo.png"}
LATIN1 = "Notes du rucher: la miellée d'été était très abondante, malgré la sécheresse.\n".encode("latin-1")


@pytest.fixture
def hugo_project(make_project, shared_embedding_cache):
    def _make(**overrides):
        params = {"embedding": {"cache_path": str(shared_embedding_cache)}}
        for section, values in overrides.items():
            params.setdefault(section, {}).update(values)
        root = make_project(params, docs={})
        shutil.rmtree(root / "data" / "docs")
        shutil.copytree(FIXTURE, root / "data" / "docs")
        return root

    return _make


def _copies(root: Path) -> dict[str, tuple[int, int]]:
    folder = root / ".lorag" / "quarantine" / "files"
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()} if folder.is_dir() else {}


def test_non_documents_are_skipped_and_pages_lose_their_markup(hugo_project):
    # 6 of the 11 files are not documents: they used to be quarantined as unsupported_type on every run,
    # which is 55% "failures" against validation.max_failure_ratio 20%: the first build was refused.
    root = hugo_project()
    params = params_of(root)

    first = run_reindex(params).summary()

    docs = first["documents"]
    assert (docs["added"], docs["quarantined"], docs["skipped"]) == (len(PAGES), 0, len(OTHERS))
    assert first["skipped"]["count"] == len(OTHERS) and set(first["skipped"]["examples"]) <= OTHERS
    assert first["skipped"]["by_suffix"] == {"(no suffix)": 1, ".png": 2, ".svg": 1, ".yaml": 2}
    assert first["quarantined"] == [] and first["quarantine_dir"] is None
    assert not (root / ".lorag" / "quarantine").exists(), "nothing is copied for files that are not documents"

    rows = published_rows(params).values()
    headings = {(doc, heading) for doc, _, heading, *_ in rows}
    texts = " ".join(row[6] for row in rows)
    assert ("docs/install/_index.md", "Install the hive scale") in headings  # front matter title heads the path
    assert ("docs/install/_index.md", "Install the hive scale > Pairing") in headings
    assert ("docs/inspections.md", "Hive inspections > Queen cells") in headings  # TOML title + Setext heading
    assert ("docs/wintering.md", "Wintering colonies > Feeding") in headings  # Setext headings
    for markup in ("title:", "weight", "+++", "{{", "{%", "tabpane"):
        assert markup not in texts, f"{markup!r} was embedded as prose"
    assert "Hold the pairing button for five seconds" in texts  # prose inside paired shortcodes is kept

    again = run_reindex(params).summary()
    docs = again["documents"]
    assert (docs["added"], docs["unchanged"], docs["quarantined"], docs["skipped"]) == (0, len(PAGES), 0, len(OTHERS))
    # "chunks unchanged" is the real number: every chunk of the collection, not 0.
    chunks = again["chunks"]
    assert chunks["chunks_unchanged"] == chunks["chunks_expected"] == first["chunks"]["chunks_expected"] > 0


def test_bad_files_are_counted_once_as_files_and_copied_once(hugo_project):
    root = hugo_project()
    docs_dir = root / "data" / "docs"
    (docs_dir / "docs" / "legacy.md").write_bytes(LATIN1)  # not UTF-8: quarantined under the default policy
    (docs_dir / "docs" / "blank.md").write_text(" \n")  # fails two rules: empty_text and too_short
    (docs_dir / "seasons").mkdir()
    (docs_dir / "seasons" / "current.md").symlink_to("../docs/wintering.md")  # in-root link: its target's bytes
    params = params_of(root, "validation.max_failure_ratio=0.5")

    first = run_reindex(params).summary()

    docs = first["documents"]
    assert (docs["added"], docs["quarantined"], docs["still_quarantined"]) == (len(PAGES), 3, 0)
    by_file = {q["doc_id"]: q for q in first["quarantined"]}
    assert set(by_file) == {"docs/legacy.md", "docs/blank.md", "seasons/current.md"}  # files, not rule hits
    assert by_file["docs/blank.md"]["rules"] == ["empty_text", "too_short"]
    assert by_file["docs/legacy.md"]["rules"] == ["invalid_encoding"]
    assert "corpus.detect_encoding" in by_file["docs/legacy.md"]["detail"]
    assert by_file["seasons/current.md"]["rules"] == ["duplicate_content"]
    link = os.readlink(docs_dir / "seasons" / "current.md")
    assert link == "../docs/wintering.md", "the snapshot must never touch the originals"
    copies = _copies(root)
    assert len(copies) == 3

    second = run_reindex(params).summary()

    docs = second["documents"]
    assert (docs["added"], docs["unchanged"], docs["quarantined"], docs["still_quarantined"]) == (0, len(PAGES), 3, 3)
    assert all(q["still"] for q in second["quarantined"])
    assert _copies(root) == copies, "a file that stays bad is not copied again"
    assert os.readlink(docs_dir / "seasons" / "current.md") == "../docs/wintering.md"

    # Opting in to detection indexes the Latin-1 page and reports that it was transcoded.
    third = run_reindex(params_of(root, "validation.max_failure_ratio=0.5", "corpus.detect_encoding=true")).summary()

    docs = third["documents"]
    assert (docs["added"], docs["quarantined"], docs["still_quarantined"], docs["transcoded"]) == (1, 2, 2, 1)
    assert [(n["doc_id"], n["rule"]) for n in third["notes"]] == [("docs/legacy.md", "transcoded")]
    assert len(_copies(root)) == 2, "the copy of a file no longer quarantined is removed"
    legacy = [row[6] for row in published_rows(params).values() if row[0] == "docs/legacy.md"]
    assert legacy == [LATIN1.decode("latin-1").strip()]


def test_quarantining_other_files_is_an_explicit_choice(hugo_project):
    root = hugo_project(corpus={"other_files": "quarantine"})

    plan = run_reindex(params_of(root), dry_run=True).summary()

    assert plan["documents"]["quarantined"] == len(OTHERS) and plan["documents"]["skipped"] == 0
    assert {q["doc_id"]: q["rule"] for q in plan["quarantined"]} == dict.fromkeys(OTHERS, "unsupported_type")
