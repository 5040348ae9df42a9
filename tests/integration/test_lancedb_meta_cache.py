"""The LanceDB store reads its meta table (aliases, states) again only when it changed: a search between two
publishes does not scan it, and a publish by another handle (another process) is still seen at once."""

from __future__ import annotations

from pathlib import Path

from lorag.index.lancedb_store import LanceDBStore


def test_alias_and_state_moved_by_another_handle_are_seen_at_once(tmp_path: Path) -> None:
    writer, reader = LanceDBStore(tmp_path / "index"), LanceDBStore(tmp_path / "index")
    for name in ("first", "second"):
        writer.create_collection(name, 4)
    writer.set_alias("live", "first")
    writer.save_state("live", {"collection": "first"})
    assert reader.get_alias("live") == "first" and reader.load_state("live") == {"collection": "first"}
    cached = reader._meta_cache

    assert reader.get_alias("live") == "first"
    assert reader._meta_cache is cached  # nothing was published: the rows were not read again

    writer.set_alias("live", "second")
    writer.save_state("live", {"collection": "second"})
    assert reader.get_alias("live") == "second"
    assert reader.load_state("live") == {"collection": "second"}
    writer.close(), reader.close()
