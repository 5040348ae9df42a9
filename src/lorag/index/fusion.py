"""Hybrid search as Weaviate does it, for stores that run the dense and full-text searches separately."""

from __future__ import annotations

from lorag.index.protocol import SearchHit


def relative_score_fusion(
    dense: list[SearchHit], fulltext: list[SearchHit], alpha: float, top_k: int
) -> list[SearchHit]:
    """Weaviate's relativeScoreFusion: min-max normalise each list, score = alpha*dense + (1-alpha)*fulltext.

    A hit missing from one list gets 0 from it. A list whose scores are all equal normalises to 1 (every hit
    is that list's best). Ties go to the list weighted more, then to its rank, so alpha=1 reproduces the dense
    order and alpha=0 the full-text order exactly.
    """
    norm_d, norm_f = _normalise(dense), _normalise(fulltext)
    rank_d = {h.chunk_id: i for i, h in enumerate(dense)}
    rank_f = {h.chunk_id: i for i, h in enumerate(fulltext)}
    first, second = (rank_d, rank_f) if alpha >= 0.5 else (rank_f, rank_d)
    hits = {h.chunk_id: h for h in [*fulltext, *dense]}
    fused = {cid: alpha * norm_d.get(cid, 0.0) + (1 - alpha) * norm_f.get(cid, 0.0) for cid in hits}
    far = len(hits) + 1

    def key(cid: str) -> tuple[float, int, int]:
        return (-fused[cid], first.get(cid, far), second.get(cid, far))

    order = sorted(hits, key=key)[:top_k]
    return [_with_score(hits[cid], fused[cid]) for cid in order]


def _normalise(hits: list[SearchHit]) -> dict[str, float]:
    if not hits:
        return {}
    lo, hi = min(h.score for h in hits), max(h.score for h in hits)
    span = hi - lo
    return {h.chunk_id: (h.score - lo) / span if span > 0 else 1.0 for h in hits}


def _with_score(hit: SearchHit, score: float) -> SearchHit:
    return SearchHit(hit.chunk_id, hit.doc_id, hit.heading, hit.text, hit.start, hit.end, float(score), hit.data_rev)
