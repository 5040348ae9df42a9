"""Embedding throughput in-process against a Dask LocalCluster of 1 and 2 worker processes, on this machine.

    python bench/scale_out.py --corpus ../shared/data/squad-v1.1-dev/corpus.jsonl -n 600

Same texts (real chunks cut by lorag's chunker), same model, one torch thread per process, a cold cache each
time, through lorag's own `embed_texts` (the driver stores every batch). The cluster is started before the
clock runs and each worker has loaded the model (one warm-up batch), so the figures are steady-state
throughput, not start-up. Writes bench/results/scale_out.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import SHARED_DATA, machine, set_threads, write_result


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=SHARED_DATA / "squad-v1.1-dev" / "corpus.jsonl")
    p.add_argument("-n", type=int, default=600, help="distinct chunks to embed per configuration")
    p.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="Dask worker processes to try")
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args()


def timed(embedder: Any, texts: list[str], runner: Any) -> dict[str, Any]:
    from lorag.corpus.model import text_hash
    from lorag.embedding.cache import EmbeddingCache
    from lorag.embedding.pipeline import embed_texts

    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp) / "cache.sqlite")
        started = time.perf_counter()
        result = embed_texts(embedder, cache, {text_hash(t): t for t in texts}, runner=runner)
        seconds = time.perf_counter() - started
    return {"texts": result.computed, "seconds": round(seconds, 2), "texts_per_s": round(result.computed / seconds, 1)}


def on_cluster(embedder: Any, params: Any, texts: list[str], workers: int) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    from lorag.embedding.fanout import DaskRunner

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            client.wait_for_workers(workers)
        dask = params.embedding.model_copy(update={"runner": "dask", "cluster_address": cluster.scheduler_address})
        runner = DaskRunner(dask, params.root, embedder.fingerprint)
        warm = [f"warm-up text {i} for worker model loading" for i in range(embedder.batch_size * workers * 2)]
        timed(embedder, warm, runner)  # every worker loads the model before the clock runs
        return timed(embedder, texts, runner)


def main() -> int:
    args = parse_args()
    threads = set_threads(1)  # one torch thread per process: worker processes inherit it
    from embedding_throughput import load_chunks

    from benchlib import make_project
    from lorag.config import load_params
    from lorag.embedding.embedder import load_embedder
    from lorag.embedding.fanout import local_runner

    with tempfile.TemporaryDirectory() as tmp:
        make_project(Path(tmp) / "p", {"embedding": {"threads": 1}, "versioning": {"enabled": False}})
        params = load_params(Path(tmp) / "p" / "params.yaml")
        embedder = load_embedder(params.embedding, root=params.root)
        texts = load_chunks(args.corpus, args.n, embedder, params.chunking.max_tokens)
        rows = {"in_process_1_thread": timed(embedder, texts, local_runner(embedder))}
        print("in-process:", rows["in_process_1_thread"], flush=True)
        for n in args.workers:
            rows[f"dask_{n}_workers"] = on_cluster(embedder, params, texts, n)
            print(f"dask {n} workers:", rows[f"dask_{n}_workers"], flush=True)
    base = rows["in_process_1_thread"]["texts_per_s"]
    for row in rows.values():
        row["speedup_vs_in_process"] = round(row["texts_per_s"] / base, 2)
    write_result("scale_out", {"setup": {"texts": len(texts), "batch_size": embedder.batch_size, "threads": threads,
                                         "machine": machine()}, "results": rows}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
