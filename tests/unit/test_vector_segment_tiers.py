"""The size-tier rule that keeps the embedded store's vector index a few segments deep."""

import math

from lorag.index.lancedb_store import vector_segments_to_merge


def simulate(writes: int, rows_per_indexing: int) -> tuple[int, int]:
    """Most segments ever held and total rows indexed, over `writes` indexings of `rows_per_indexing` rows."""
    segments: list[int] = []
    deepest, indexed = 0, 0
    for _ in range(writes):
        merge = vector_segments_to_merge(segments, rows_per_indexing)
        merged = rows_per_indexing + sum(segments[len(segments) - merge:])
        segments = segments[: len(segments) - merge] + [merged]
        indexed += merged
        deepest = max(deepest, len(segments))
    return deepest, indexed


def test_segments_grow_with_the_log_of_the_rows_and_rows_are_reindexed_log_times() -> None:
    for writes in (1, 7, 100, 1000):
        deepest, indexed = simulate(writes, 2048)
        levels = math.floor(math.log2(writes)) + 1
        assert deepest <= levels, (writes, deepest)
        assert indexed <= writes * 2048 * levels, (writes, indexed)  # merging everything each time: writes^2/2


def test_a_segment_joins_the_merge_only_while_no_larger_than_what_is_merged() -> None:
    assert vector_segments_to_merge([], 100) == 0  # nothing to merge: the new rows become a segment
    assert vector_segments_to_merge([400, 100], 100) == 1  # the equal-sized newest joins
    assert vector_segments_to_merge([400, 200, 100], 100) == 3  # 100+100, then 200, then 400 join: one of 800
    assert vector_segments_to_merge([500, 200, 100], 100) == 2  # 500 > 400 merged so far: it stays
    assert vector_segments_to_merge([5000], 100) == 0  # a big segment is not rewritten for a small write
