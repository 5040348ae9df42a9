"""The RAG x fine-tune evaluation matrix on SQuAD v1.1 dev: train on split-A questions, evaluate on split B.

Split A and split B share no article (../shared/data/squad-v1.1-dev/split_a_articles.txt), so the adapter can only
learn the answer *format* from A; the facts of B are only reachable through retrieval. Steps, all lorag code:
one Markdown document per article (a `## Paragraph i` section per SQuAD paragraph) indexed by `run_reindex`;
grounded training examples for split-A questions built with `build_grounded_examples` over lorag's own search
(top k passages, gold passage swapped in when missing, answer = the first gold span + its `Sources:` line);
examples validated (GX suite); base model = the demo model pre-trained on split-A articles only (or any model via
--base-model); LoRA trained under accelerate, registered, and `evaluate_version` run on split-B questions.

CPU (this machine, minutes):   python bench/eval_matrix.py
GPU host, a real small model:  python bench/eval_matrix.py --base-model Qwen/Qwen2.5-0.5B-Instruct \\
    --accelerate-config gpu-1 --train-questions 2000 --eval-questions 500 --articles 24 --epochs 2 --top-k 3 \\
    --max-seq-len 1024 --lr 2e-4 --threads 8
Results: bench/results/eval_matrix.json (+ the MLflow run in the throwaway project, path printed).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import RESULTS, SHARED_DATA, machine, make_project, set_threads  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=SHARED_DATA / "squad-v1.1-dev")
    p.add_argument("--articles", type=int, default=4, help="articles per split (the index holds 2x this)")
    p.add_argument("--train-questions", type=int, default=200, help="split-A questions turned into examples")
    p.add_argument("--eval-questions", type=int, default=40, help="split-B questions in the matrix")
    p.add_argument("--base-model", default=None, help="a local folder or cached hub id; default: the demo model")
    p.add_argument("--pretrain-steps", type=int, default=300, help="demo model only: pre-training on split A")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--top-k", type=int, default=2, help="passages in training and RAG prompts")
    p.add_argument("--max-seq-len", type=int, default=768)
    p.add_argument("--chunk-tokens", type=int, default=96, help="index chunk size: 2 SQuAD passages fit a prompt")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--accelerate-config", default="cpu-1proc")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "eval_matrix.json")
    p.add_argument("--workdir", type=Path, default=None, help="keep the project here (default: a temp folder)")
    return p.parse_args(argv)


def load_squad(data: Path, n_articles: int, seed: int) -> dict[str, Any]:
    """Articles (title -> paragraphs), questions with their gold article, and the A/B split of both."""
    split_a = set((data / "split_a_articles.txt").read_text(encoding="utf-8").split())
    paragraphs: dict[str, list[tuple[str, str]]] = {}
    for line in (data / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        paragraphs.setdefault(row["_id"].split("#")[0], []).append((row["_id"], row["text"]))
    gold = {}
    for line in (data / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, pid, _ = line.split("\t")
        gold[qid] = pid.split("#")[0]
    rng = random.Random(seed)
    a = sorted(t for t in paragraphs if t in split_a)
    b = sorted(t for t in paragraphs if t not in split_a)
    chosen = {"A": rng.sample(a, min(n_articles, len(a))), "B": rng.sample(b, min(n_articles, len(b)))}
    questions: dict[str, list[dict[str, str]]] = {"A": [], "B": []}
    by_article = {t: s for s, titles in chosen.items() for t in titles}
    for line in (data / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        article = gold.get(q["_id"])
        if article in by_article:
            questions[by_article[article]].append({"id": q["_id"], "question": q["text"],
                                                   "answer": q["answers"][0], "doc_id": f"{article}.md"})
    return {"paragraphs": paragraphs, "chosen": chosen, "questions": questions}


def write_docs(docs_dir: Path, squad: dict[str, Any]) -> None:
    for title in squad["chosen"]["A"] + squad["chosen"]["B"]:
        body = "\n\n".join(f"## Paragraph {i}\n\n{text}" for i, (_, text) in enumerate(squad["paragraphs"][title]))
        (docs_dir / f"{title}.md").write_text(f"# {title.replace('_', ' ')}\n\n{body}\n", encoding="utf-8")


def project_params(args: argparse.Namespace, base_model: str) -> dict[str, Any]:
    return {
        "versioning": {"enabled": False},
        "chunking": {"max_tokens": args.chunk_tokens},
        "embedding": {"cache_path": ".lorag/embedding-cache.sqlite"},
        "train": {"base_model": base_model, "epochs": args.epochs, "learning_rate": args.lr,
                  "accelerate_config": args.accelerate_config, "threads_per_process": args.threads,
                  "max_seq_len": args.max_seq_len, "batch_size": 4, "checkpoint_every": 1000,
                  "lora": {"r": 16, "alpha": 32, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj",
                                                                    "gate_proj", "up_proj", "down_proj"]}},
        "examples": {"dir": "data/examples", "max_failure_ratio": 0.5},
        "evaluation": {"questions": "data/eval_questions.jsonl", "exclude_trained_docs": True,
                       "max_new_tokens": args.max_new_tokens, "top_k": args.top_k},
    }


def build_examples(params: Any, questions: list[dict[str, str]], k: int) -> int:
    """Grounded examples for split-A questions over lorag's own index, split by source article."""
    from lorag.retrieval.search import search
    from lorag.training.examples import Question, build_grounded_examples, split_by_source, write_split

    qs = [Question(q["id"], q["question"], q["answer"], q["doc_id"]) for q in questions]
    examples = build_grounded_examples(qs, lambda query, n: search(params, query, top_k=n), k)
    train, held_out = split_by_source(examples, eval_share=0.25, seed=0)  # no article in both (the GX leakage rule)
    write_split(train, held_out, params.examples.dir)
    return len(examples)


def demo_base_model(folder: Path, texts: list[str], args: argparse.Namespace) -> Path:
    from lorag.config import load_params
    from lorag.training.pretrain import pretrain
    from lorag.training.tiny_model import build_tiny_base_model

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    build_tiny_base_model(params, folder, texts=texts)
    if args.pretrain_steps:
        pretrain(folder, texts, steps=args.pretrain_steps, seq_len=128, batch_size=8, lr=3e-3, seed=args.seed)
    return folder


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from lorag.config import load_params
    from lorag.reindex.run import run_reindex
    from lorag.retrain.examples import validate_examples
    from lorag.retrain.run import run_retrain

    squad = load_squad(args.data, args.articles, args.seed)
    texts_a = [t for title in squad["chosen"]["A"] for _, t in squad["paragraphs"][title]]
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    base = args.base_model or str(demo_base_model(root / "base-model", texts_a, args))
    seconds["base_model"] = time.perf_counter() - t
    make_project(root / "project", project_params(args, base))
    project = root / "project"
    write_docs(project / "data" / "docs", squad)
    rng = random.Random(args.seed)
    eval_qs = rng.sample(squad["questions"]["B"], min(args.eval_questions, len(squad["questions"]["B"])))
    (project / "data" / "eval_questions.jsonl").write_text(
        "".join(json.dumps(q) + "\n" for q in eval_qs), encoding="utf-8")
    params = load_params(project / "params.yaml")
    t = time.perf_counter()
    run_reindex(params)
    seconds["index"] = time.perf_counter() - t
    train_qs = rng.sample(squad["questions"]["A"], min(args.train_questions, len(squad["questions"]["A"])))
    n_examples = build_examples(params, train_qs, args.top_k)
    validate_examples(params)
    t = time.perf_counter()
    done = run_retrain(params, register=True)
    seconds["train_register_evaluate"] = time.perf_counter() - t
    matrix = done.matrix
    return {"articles": squad["chosen"], "examples": n_examples, "eval_questions": len(eval_qs),
            "seconds": seconds, "train": {k: done.trained.summary.get(k) for k in ("steps", "tokens", "final_loss")},
            "matrix": matrix.to_dict(), "mlflow": params.tracking_uri, "version": matrix.version}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    set_threads(args.threads)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="lorag-eval-matrix-"))
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "machine": machine(), **run(args, root)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    m = result["matrix"]["metrics"]
    for row in result["matrix"]["rows"]:
        cells = ", ".join(f"{k} {m.get(f'{row}.{k}')}" for k in ("exact_match", "f1", "cited_format",
                                                                 "citation_accuracy", "prompt_tokens",
                                                                 "generated_tokens", "seconds_per_answer"))
        print(f"{row}: {cells}")
    print(f"wrote {args.out}; project and MLflow store in {root}")


if __name__ == "__main__":
    main()
