"""Retrieval quality on SQuAD v1.1 dev (BEIR layout): recall@10 and nDCG@10 for dense, full-text and hybrid
search at alpha 0.1 ... 0.9, through lorag's own indexing and search code, on two relevance sets.

    python bench/retrieval_quality.py --beir ../shared/data/squad-v1.1-dev            # all 10,570 questions
    python bench/retrieval_quality.py --beir ../shared/data/squad-v1.1-dev --queries 2000

The 2,067 paragraphs are written as one .txt per paragraph (title line, blank line, text) into a lorag project's
docs folder and indexed with `run_reindex` (chunked at chunking.max_tokens, so a long paragraph may be several
chunks). Per question, the store's dense and full-text searches are each run once with 4 x 20 candidates (what
`store.search(mode="hybrid", top_k=20)` fetches), fused with the store's own `relative_score_fusion` at every alpha
(checked equal to `store.search` on a sample), and chunk hits are collapsed to paragraphs (best rank) before
scoring the top 10. Writes bench/results/retrieval_quality.json.

Scoring is BEIR's (pytrec_eval's): every qrels row counts, with its grade as the gain; recall@10 = relevant found
in the top 10 / all relevant; nDCG@10 against the ideal ordering of the query's own grades. Two relevance sets
are scored from the same searches:
  paragraph  the dataset's qrels: the one paragraph that holds the answer (grade 1).
  article    several relevant documents per query, built offline from the same data: the answer paragraph is
             grade 2 and every other paragraph of the same Wikipedia article grade 1 (48 articles, ~43 paragraphs
             each). It rewards ranking the question's topic high, not only its exact words, which is what a
             documentation search with many related pages needs; SQuAD's own set favours word overlap.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchlib import SHARED_DATA, machine, make_project, set_threads, write_result

ALPHAS = [round(0.1 * i, 1) for i in range(1, 10)]
CHUNK_HITS = 20  # chunk hits per query before collapsing to paragraphs (enough for 10 distinct paragraphs)
K = 10


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--beir", type=Path, default=SHARED_DATA / "squad-v1.1-dev", help="BEIR-layout dataset folder")
    p.add_argument("--queries", type=int, default=0, help="a fixed random sample of this many (0 = all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/lorag-bench/quality"))
    p.add_argument("--cache", type=Path, default=Path("/tmp/lorag-bench/quality-embedding-cache.sqlite"),
                   help="embedding cache kept between runs (content-addressed; re-runs skip the corpus embedding)")
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args()


def file_name(doc_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", doc_id) + ".txt"


def load(beir: Path, n: int) -> tuple[list[dict], list[tuple[str, str]], dict[str, dict[str, int]]]:
    corpus = [json.loads(line) for line in (beir / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line) for line in (beir / "queries.jsonl").open(encoding="utf-8")]
    gold: dict[str, dict[str, int]] = {}
    with (beir / "qrels" / "test.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if int(row["score"]) > 0:
                gold.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    pairs = [(q["_id"], q["text"]) for q in queries if q["_id"] in gold]
    if n:
        rng = np.random.default_rng(0)
        pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), size=n, replace=False))]
    return corpus, pairs, gold


def build_index(root: Path, corpus: list[dict], threads: int, cache: Path) -> tuple[Any, dict[str, Any], dict[str, str]]:
    from lorag.config import load_params
    from lorag.reindex.run import run_reindex

    make_project(root, {"embedding": {"threads": threads, "cache_path": str(cache)}})
    params = load_params(root / "params.yaml")
    docs = params.path(params.corpus.docs_dir)
    file_to_id = {}
    for p in corpus:
        name = file_name(p["_id"])
        file_to_id[name] = p["_id"]
        (docs / name).write_text(f"{p['title'].replace('_', ' ')}\n\n{p['text']}\n", encoding="utf-8")
    if len(file_to_id) != len(corpus):
        raise SystemExit("two paragraph ids map to one file name; change file_name()")
    started = time.perf_counter()
    summary = run_reindex(params).summary()
    summary["wall_seconds"] = round(time.perf_counter() - started, 2)
    return params, summary, file_to_id


def to_docs(hits: list[Any], file_to_id: dict[str, str]) -> list[str]:
    out: list[str] = []
    for h in hits:
        pid = file_to_id[h.doc_id]
        if pid not in out:
            out.append(pid)
    return out[:K]


def score(ranked: list[str], relevant: dict[str, int]) -> tuple[float, float]:
    """(recall@10, nDCG@10) the BEIR way: graded gains, all relevant documents of the query count."""
    found = sum(1 for d in ranked[:K] if relevant.get(d, 0) > 0)
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:K]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(relevant.values(), reverse=True)[:K]))
    return found / len(relevant), (dcg / ideal if ideal else 0.0)


def article_qrels(corpus: list[dict], gold: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The second relevance set: the answer paragraph 2, every other paragraph of its article 1."""
    by_title: dict[str, list[str]] = {}
    title_of = {}
    for p in corpus:
        by_title.setdefault(p["title"], []).append(p["_id"])
        title_of[p["_id"]] = p["title"]
    out = {}
    for qid, rel in gold.items():
        graded = {pid: 1 for d in rel for pid in by_title[title_of[d]]}
        graded.update({d: 2 for d in rel})
        out[qid] = graded
    return out


def evaluate(params: Any, pairs: list[tuple[str, str]], sets: dict[str, dict[str, dict[str, int]]],
             file_to_id: dict[str, str]) -> dict:
    from lorag.corpus.model import text_hash
    from lorag.embedding.cache import EmbeddingCache
    from lorag.embedding.embedder import load_embedder
    from lorag.embedding.pipeline import embed_texts
    from lorag.index.fusion import relative_score_fusion
    from lorag.index.lancedb_store import OVERFETCH
    from lorag.index.stores import open_store

    embedder = load_embedder(params.embedding, root=params.root)
    started = time.perf_counter()
    # Through the content-addressed cache, so a re-run (or one stopped by a time limit) keeps finished batches.
    texts = {text_hash(t): t for _, t in pairs}
    cache = EmbeddingCache(params.path(params.embedding.cache_path))
    vectors = embed_texts(embedder, cache, texts).vectors
    qv = [vectors[text_hash(t)] for _, t in pairs]
    embed_s = time.perf_counter() - started
    store = open_store(params)
    collection = store.get_alias(params.index.name)
    names = ["dense", "fulltext", *[f"hybrid@{a}" for a in ALPHAS]]
    sums = {(rel, n): np.zeros(2) for rel in sets for n in names}
    mismatches = 0
    started = time.perf_counter()
    for i, ((qid, text), v) in enumerate(zip(pairs, qv, strict=True)):
        k = OVERFETCH * CHUNK_HITS
        dense = store.search(collection, text, v, top_k=k, alpha=1.0, mode="dense")
        full = store.search(collection, text, v, top_k=k, alpha=0.0, mode="fulltext")
        runs = {"dense": dense[:CHUNK_HITS], "fulltext": full[:CHUNK_HITS]}
        for a in ALPHAS:
            runs[f"hybrid@{a}"] = relative_score_fusion(dense, full, a, CHUNK_HITS)
        if i < 25:  # the shortcut must be exactly what the store's hybrid search returns
            direct = store.search(collection, text, v, top_k=CHUNK_HITS, alpha=0.5, mode="hybrid")
            mismatches += [h.chunk_id for h in direct] != [h.chunk_id for h in runs["hybrid@0.5"]]
        for name, hits in runs.items():
            ranked = to_docs(hits, file_to_id)
            for rel, qrels in sets.items():
                sums[(rel, name)] += score(ranked, qrels[qid])
    search_s = time.perf_counter() - started
    store.close()
    n = len(pairs)
    metrics = {rel: {name: {"recall@10": round(sums[(rel, name)][0] / n, 4), "ndcg@10": round(sums[(rel, name)][1] / n, 4)}
                     for name in names} for rel in sets}
    return {"metrics": metrics, "hybrid_check_mismatches_of_25": int(mismatches),
            "seconds": {"query_embedding_or_cache": round(embed_s, 1), "search_and_fusion": round(search_s, 1)}}


def main() -> int:
    args = parse_args()
    threads = set_threads(args.threads)
    import shutil

    shutil.rmtree(args.workdir, ignore_errors=True)
    corpus, pairs, gold = load(args.beir, args.queries)
    params, summary, file_to_id = build_index(args.workdir, corpus, threads, args.cache)
    print(f"indexed {len(corpus)} paragraphs: {summary['chunks']} in {summary['wall_seconds']} s "
          f"(embedded {summary['embeddings']})", flush=True)
    sets = {"paragraph": gold, "article": article_qrels(corpus, gold)}
    result = evaluate(params, pairs, sets, file_to_id)
    best: dict[str, dict[str, float]] = {}
    for rel, metrics in result["metrics"].items():
        hybrid = {a: metrics[f"hybrid@{a}"] for a in ALPHAS}
        best[rel] = {"by_ndcg@10": max(ALPHAS, key=lambda a: (hybrid[a]["ndcg@10"], hybrid[a]["recall@10"])),
                     "by_recall@10": max(ALPHAS, key=lambda a: (hybrid[a]["recall@10"], hybrid[a]["ndcg@10"]))}
        print(f"-- relevance set {rel}")
        for name, m in metrics.items():
            print(f"{name:>13}: recall@10 {m['recall@10']:.4f}  nDCG@10 {m['ndcg@10']:.4f}")
    # One default for both sets: the alpha with the best mean nDCG@10 over them (each set weighs the same).
    mean_ndcg = {a: float(np.mean([result["metrics"][rel][f"hybrid@{a}"]["ndcg@10"] for rel in sets])) for a in ALPHAS}
    best["both_mean_ndcg@10"] = {"alpha": max(ALPHAS, key=lambda a: mean_ndcg[a]),
                                 "mean_ndcg@10": {a: round(v, 4) for a, v in mean_ndcg.items()}}
    print(f"best alpha: {best}; params.yaml search.alpha: {params.search.alpha}")
    payload = {
        "setup": {
            "dataset": str(args.beir), "paragraphs": len(corpus), "queries": len(pairs),
            "query_sample": "all" if not args.queries else f"fixed random {args.queries} (numpy seed 0)",
            "indexing": "run_reindex on a docs folder of one .txt per paragraph (title line + text), "
                        "DVC versioning on, chunking.max_tokens 200; paragraph = best-ranked of its chunks",
            "hybrid": "store dense + full-text top 80 chunks, lorag's relative_score_fusion at each alpha, top 20 "
                      "chunks -> top 10 paragraphs (identical to store.search(mode='hybrid', top_k=20))",
            "relevance_sets": {"paragraph": "the dataset's qrels (one answer paragraph, grade 1)",
                               "article": "answer paragraph grade 2, the other paragraphs of its article grade 1"},
            "scoring": "BEIR / pytrec_eval: graded gains, recall over all relevant, nDCG@10 vs the ideal order",
            "threads": threads, "machine": machine(),
        },
        "index": {k: summary[k] for k in ("documents", "chunks", "embeddings", "wall_seconds", "quarantined")},
        **result,
        "best_alpha": {**best, "params_yaml": params.search.alpha},
    }
    print("wrote", write_result("retrieval_quality", payload, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
