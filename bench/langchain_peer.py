"""The peer in the re-index replay: LangChain's indexing API (record manager + vector store), fed lorag's chunks.

Both sides embed exactly the same texts with the same loaded model, so the difference measured is how each one
decides what to (re-)embed and write when documents change, not chunking or model speed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


def counting_embeddings(embedder: Any, memo: dict[str, np.ndarray] | None = None) -> Any:
    """A LangChain `Embeddings` around lorag's loaded sentence-transformers model that counts texts.

    `memo` (text hash -> vector of the same model) answers the initial build only, so that the first, shared
    full build of the corpus is not embedded twice on a 2-core machine; every update is computed for real.
    """
    from langchain_core.embeddings import Embeddings

    from lorag.corpus.model import text_hash

    class CountingEmbeddings(Embeddings):
        def __init__(self) -> None:
            self.computed = 0
            self.from_memo = 0
            self.memo = memo

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            out: list[Any] = [None] * len(texts)
            todo = []
            for i, text in enumerate(texts):
                hit = self.memo.get(text_hash(text)) if self.memo is not None else None
                if hit is None:
                    todo.append(i)
                else:
                    out[i] = hit
            self.from_memo += len(texts) - len(todo)
            if todo:
                vectors = embedder.embed([texts[i] for i in todo])
                for i, vec in zip(todo, vectors, strict=True):
                    out[i] = vec
                self.computed += len(todo)
            return [np.asarray(v, dtype=np.float32).tolist() for v in out]

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed([text])[0].tolist()

    return CountingEmbeddings()


@dataclass
class LangChainSide:
    """SQLRecordManager (sqlite file) + InMemoryVectorStore, updated with `index(..., cleanup="full")`."""

    workdir: Path
    embedder: Any
    suffixes: tuple[str, ...]
    max_tokens: int
    overlap_tokens: int
    max_file_bytes: int
    memo: dict[str, np.ndarray] | None = None
    embeddings: Any = field(init=False)

    def __post_init__(self) -> None:
        from langchain_classic.indexes import SQLRecordManager
        from langchain_core.vectorstores import InMemoryVectorStore

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.embeddings = counting_embeddings(self.embedder, self.memo)
        self.record_manager = SQLRecordManager("lorag_bench", db_url=f"sqlite:///{self.workdir / 'records.sqlite'}")
        self.record_manager.create_schema()
        self.store = InMemoryVectorStore(self.embeddings)
        self._split_memo: dict[tuple[str, str], list[tuple[str, str]]] = {}

    def load_split(self, docs_root: Path) -> list[Any]:
        """Every document of the folder, chunked by lorag's chunker: the indexing API needs the full set each
        time to know what to delete (cleanup="full"). Chunks are memoised per (path, md5), a favour to LangChain:
        a plain pipeline re-splits every file on every update (the first, full split shows that cost)."""
        from langchain_core.documents import Document as LCDocument

        from lorag.corpus.chunker import chunk_document
        from lorag.corpus.reader import list_files, read_documents

        ids, _ = list_files(docs_root, self.suffixes)
        docs, _ = read_documents(docs_root, ids, self.max_file_bytes)
        out = []
        for doc in docs:
            key = (doc.doc_id, doc.content_md5)
            if key not in self._split_memo:
                chunks = chunk_document(doc, self.embedder.tokenizer, self.max_tokens, self.overlap_tokens)
                self._split_memo[key] = [(c.text, c.heading) for c in chunks]
            for text, heading in self._split_memo[key]:
                out.append(LCDocument(page_content=text, metadata={"source": doc.doc_id, "heading": heading}))
        return out

    def update(self, docs_root: Path) -> dict[str, Any]:
        from langchain_core.indexing import index

        before = self.embeddings.computed + self.embeddings.from_memo
        started = time.perf_counter()
        docs = self.load_split(docs_root)
        split_s = time.perf_counter() - started
        result = index(docs, self.record_manager, self.store, cleanup="full", source_id_key="source",
                       key_encoder="sha256")
        total = time.perf_counter() - started
        return {
            "texts_embedded": self.embeddings.computed + self.embeddings.from_memo - before,
            "seconds": round(total, 3),
            "seconds_load_split": round(split_s, 3),
            "seconds_index": round(total - split_s, 3),
            "chunks_passed": len(docs),
            "result": dict(result),
            "store_size": len(self.store.store),
        }

    def texts(self) -> list[tuple[str, str]]:
        """(source, text) of every stored document, for comparing contents with lorag's index."""
        return sorted((d["metadata"]["source"], d["text"]) for d in self.store.store.values())
