"""The documents watcher of `lorag serve`: each debounced change re-indexed by the re-index flow in this warm
process (a flow run in the Prefect UI, under the same global concurrency limit as the deployments).

Why not only the `lorag.docs.changed` event: a deployment's run starts a fresh process, which imports the stack
and loads the embedder before it reads a file (~30 s measured on a loaded 2-core machine); here they stay loaded,
and a one-document edit is searchable in about a second or two (bench/change_latency.py). The event path stays
for watchers on other machines (`lorag watch`).

Run it:  python -m flows.watch [--params params.yaml]
"""

from __future__ import annotations

import argparse
import json
import threading

import lorag  # noqa: F401  (first: sets the telemetry-off / offline environment before Prefect reads it)

from flows.reindex import reindex_flow
from lorag.config import load_params
from lorag.watch import reindex_here, run_watch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Watch the documents folder; re-index each change as a flow run.")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    handle = reindex_here(params, reindex=lambda: reindex_flow(args.params), mode="serve-watch")
    from lorag.embedding.embedder import load_embedder

    load_embedder(params.embedding, root=params.root)  # loaded once, before the first change (measured: ~15 s cold)
    print(f"watching {params.corpus.docs_dir}", flush=True)
    stop = threading.Event()
    try:
        run_watch(params, handle, stop, on_result=lambda out: print(json.dumps(out, default=str), flush=True))
    except KeyboardInterrupt:
        stop.set()


if __name__ == "__main__":
    main()
