"""LoRA training core: tiny model, loss mask, packing, adapter round trips, real accelerate runs, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from lorag.config import ConfigError, LoraParams, Params, load_params
from lorag.training import checkpoints as ckpt
from lorag.training.data import (
    IGNORE_INDEX,
    BatchOrder,
    Example,
    collate,
    encode_example,
    encode_examples,
    make_rows,
)
from lorag.training.launcher import TrainingFailed, build_command, launch_training, preflight
from lorag.training.lora import apply_lora, merge_adapter, save_adapter
from lorag.training.run_folder import RunFolder

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load(model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.config.use_cache = False
    return model.eval(), AutoTokenizer.from_pretrained(model_dir)


# --- tiny model and data ---------------------------------------------------------------------------------------


def test_tiny_model_is_deterministic_for_a_seed(tiny_model_dir: Path, tmp_path: Path, example_factory) -> None:
    from lorag.training.tiny_model import build_tiny_base_model

    texts = [f"{e['instruction']} {e['response']} {e.get('context', '')}" for e in example_factory(64)]
    again = build_tiny_base_model(Params(), tmp_path / "again", texts=texts)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (again / name).read_bytes() == (tiny_model_dir / name).read_bytes(), name
    other = build_tiny_base_model(load_params(overrides=["train.seed=7"]), tmp_path / "other", texts=texts)
    assert (other / "model.safetensors").read_bytes() != (tiny_model_dir / "model.safetensors").read_bytes()


def test_loss_mask_covers_only_assistant_tokens(tiny_model_dir: Path) -> None:
    _, tok = _load(tiny_model_dir)
    ex = Example("x", "What is a session?", "A session holds the objects of one unit of work.", "Sessions doc.")
    enc = encode_example(tok, ex, system="Answer from the docs.")
    trained = [t for t in enc.labels if t != IGNORE_INDEX]
    assert tok.decode(trained) == ex.response + tok.eos_token
    # The trained tokens are one contiguous run at the end (the template's trailing newline excluded).
    first = next(i for i, t in enumerate(enc.labels) if t != IGNORE_INDEX)
    assert enc.labels[first : first + len(trained)] == enc.input_ids[first : first + len(trained)]
    prompt = tok.decode(enc.input_ids[:first])
    assert "Answer from the docs." in prompt and "Sessions doc." in prompt and ex.response not in prompt


def test_too_long_examples_are_reported_not_dropped_silently(tiny_model_dir: Path, examples) -> None:
    _, tok = _load(tiny_model_dir)
    long = Example("long", "Explain everything.", "word " * 300)
    empty = Example("empty", "Say nothing.", "")
    kept, skipped = encode_examples(tok, [examples[0], long, empty], max_seq_len=128)
    assert [k.id for k in kept] == [examples[0].id]
    reasons = {s.id: s.reason for s in skipped}
    assert set(reasons) == {"long", "empty"}
    assert "max_seq_len=128" in reasons["long"] and reasons["empty"] == "empty response"


def test_packing_isolates_examples(tiny_model_dir: Path, examples) -> None:
    model, tok = _load(tiny_model_dir)
    encoded, _ = encode_examples(tok, examples[:3], max_seq_len=512)
    (row,) = make_rows(encoded, max_seq_len=512, packing=True)
    assert row.example_ids == [e.id for e in examples[:3]]
    packed = collate([row], tok.pad_token_id, packing=True)
    assert "attention_mask" not in packed
    with torch.no_grad():
        logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"]).logits[0]
        offset = 0
        for enc in encoded:
            alone = model(input_ids=torch.tensor([enc.input_ids])).logits[0]
            inside = logits[offset : offset + len(enc.input_ids)]
            torch.testing.assert_close(inside, alone, atol=1e-5, rtol=1e-4)
            offset += len(enc.input_ids)
        # Why use_cache=False is forced: with a KV cache transformers skips packed-sequence detection and the
        # second example attends to the first.
        leaky = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=True).logits[0]
    n0, n1 = len(encoded[0].input_ids), len(encoded[1].input_ids)
    assert not torch.allclose(leaky[n0 : n0 + n1], logits[n0 : n0 + n1], atol=1e-3)



def test_best_fit_packing_fills_rows_and_keeps_file_order_inside_a_row() -> None:
    from lorag.training.data import Encoded, best_fit_decreasing

    lengths = [300, 250, 200, 260, 100, 212, 40, 500]
    bins = best_fit_decreasing(lengths, 512)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 512 for b in bins)
    assert len(bins) == 4  # packing in file order needs 5 rows for these lengths
    encoded = [Encoded(f"e{i}", [i] * n, [IGNORE_INDEX] * n) for i, n in enumerate(lengths)]
    rows = make_rows(encoded, 512, packing=True)
    assert len(rows) == 4 and sorted(e for r in rows for e in r.example_ids) == sorted(e.id for e in encoded)
    for row in rows:
        assert row.example_ids == sorted(row.example_ids, key=lambda e: int(e[1:]))
        assert row.position_ids == [p for e in row.example_ids for p in range(lengths[int(e[1:])])]


def test_packed_batches_are_padding_free_and_packed_training_matches_the_model(
    tiny_model_dir: Path, examples
) -> None:
    from lorag.training.lora import response_loss_model, use_packed_attention

    model, tok = _load(tiny_model_dir)
    encoded, _ = encode_examples(tok, examples[:6], max_seq_len=200)
    rows = make_rows(encoded, max_seq_len=200, packing=True)
    batch = collate(rows, tok.pad_token_id, packing=True)
    total = sum(len(e.input_ids) for e in encoded)
    assert batch["input_ids"].shape == (1, total) and batch.pop("num_real_tokens") == total
    fast, _ = _load(tiny_model_dir)
    use_packed_attention(fast)
    with torch.no_grad():
        torch.testing.assert_close(fast(**batch).logits, model(**batch).logits, atol=1e-5, rtol=1e-4)
    # The label-only loss (output layer on response tokens only) gives the model's loss and the same gradients.
    torch.manual_seed(0)
    reference = apply_lora(model, LoraParams(dropout=0.0))
    torch.manual_seed(0)
    wrapped = response_loss_model(apply_lora(fast, LoraParams(dropout=0.0)))
    assert wrapped.plain_head
    expected, got = reference(**batch, use_cache=False).loss, wrapped(**batch)
    torch.testing.assert_close(got, expected)
    expected.backward()
    got.backward()
    grads = {n: p.grad for n, p in reference.named_parameters() if p.requires_grad}
    for name, param in wrapped.peft_model.named_parameters():
        if param.requires_grad:
            torch.testing.assert_close(param.grad, grads[name], atol=1e-6, rtol=1e-4)


def test_dynamic_padding_matches_unpadded_logits(tiny_model_dir: Path, examples) -> None:
    model, tok = _load(tiny_model_dir)
    encoded, _ = encode_examples(tok, examples[:3], max_seq_len=512)
    rows = make_rows(encoded, max_seq_len=512, packing=False)
    batch = collate(rows, tok.pad_token_id, packing=False)
    assert batch["input_ids"].shape[1] == max(len(e.input_ids) for e in encoded)
    assert batch["num_real_tokens"] == sum(len(e.input_ids) for e in encoded)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        for i, enc in enumerate(encoded):
            alone = model(input_ids=torch.tensor([enc.input_ids])).logits[0]
            torch.testing.assert_close(logits[i, : len(enc.input_ids)], alone, atol=1e-5, rtol=1e-4)


def test_batch_order_is_seeded_complete_and_resumable() -> None:
    ranks = [BatchOrder(10, batch_size=2, world_size=2, rank=r, seed=3) for r in range(2)]
    first = [[b for _, _, b in _take(o.iter_from(0), 9)] for o in ranks]
    # Within an epoch (3 micro-batches of 2 x 2 = 12 slots) every row is seen; the ranks never overlap in a step.
    epoch0 = {i for r in range(2) for b in first[r][:3] for i in b}
    assert epoch0 == set(range(10))
    assert all(not set(first[0][k]) & set(first[1][k]) for k in range(3))
    assert first[0][:3] != first[0][3:6]  # a new permutation per epoch
    for r, order in enumerate(ranks):
        assert [b for _, _, b in _take(order.iter_from(4), 5)] == first[r][4:9]
    assert first[0] == [b for _, _, b in _take(BatchOrder(10, 2, 2, 0, seed=3).iter_from(0), 9)]


def _take(it, n):
    return [next(it) for _ in range(n)]


# --- LoRA and adapters -----------------------------------------------------------------------------------------


def _train_a_few_steps(model_dir: Path, examples, steps: int = 3):
    model, tok = _load(model_dir)
    peft_model = apply_lora(model, LoraParams(dropout=0.0))
    encoded, _ = encode_examples(tok, examples[:4], max_seq_len=512)
    batch = collate(make_rows(encoded, 512, packing=True), tok.pad_token_id, packing=True)
    batch.pop("num_real_tokens")
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    peft_model.train()
    for _ in range(steps):
        peft_model(**batch, use_cache=False).loss.backward()
        opt.step()
        opt.zero_grad()
    return peft_model.eval(), tok, batch


def test_lora_moves_adapter_weights_and_leaves_base_untouched(tiny_model_dir: Path, examples) -> None:
    base, _ = _load(tiny_model_dir)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    peft_model, _, _ = _train_a_few_steps(tiny_model_dir, examples)
    after = peft_model.state_dict()
    lora_keys = [k for k in after if "lora_" in k]
    assert lora_keys and any("lora_B" in k and after[k].abs().sum() > 0 for k in lora_keys)  # B starts at zero
    for key, value in before.items():
        wrapped = "base_model.model." + key
        if wrapped not in after:  # a LoRA target: the original weight moved under .base_layer
            wrapped = wrapped.replace(".weight", ".base_layer.weight")
        assert torch.equal(after[wrapped], value), f"base weight {key} changed"


def test_adapter_round_trip_gives_identical_logits_and_holds_only_adapter(
    tiny_model_dir: Path, tmp_path: Path, examples
) -> None:
    from peft import PeftModel
    from safetensors import safe_open

    peft_model, _, batch = _train_a_few_steps(tiny_model_dir, examples)
    out = save_adapter(peft_model, tmp_path / "adapter")
    names = {p.name for p in out.iterdir()}
    assert "adapter_model.safetensors" in names and "adapter_config.json" in names
    assert not names & {"model.safetensors", "pytorch_model.bin", "adapter_model.bin"}
    with safe_open(out / "adapter_model.safetensors", "pt") as f:
        assert f.keys() and all("lora_" in k for k in f.keys())
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in out.iterdir() if p.is_file())
    base, _ = _load(tiny_model_dir)
    loaded = PeftModel.from_pretrained(base, out).eval()
    with torch.no_grad():
        expected = peft_model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        got = loaded(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
    assert torch.equal(expected, got)
    merged = merge_adapter(tiny_model_dir, out, tmp_path / "merged")
    plain, _ = _load(merged)
    with torch.no_grad():
        torch.testing.assert_close(plain(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits,
                                   expected, atol=1e-5, rtol=1e-4)


# --- configuration errors before any training --------------------------------------------------------------------


def test_bad_params_fail_before_training(tiny_model_dir: Path, tmp_path: Path, project_factory) -> None:
    root = project_factory(tmp_path / "p", tiny_model_dir)
    with pytest.raises(ValueError, match=r"no-such-config.*Available: .*cpu-2proc"):
        launch_training(load_params(root, ["train.accelerate_config=no-such-config"]), tmp_path / "r")
    with pytest.raises(ValueError, match=r"\['qkv'\] not found.*q_proj"):
        preflight(load_params(root, ["train.lora.target_modules=[q_proj, qkv]"]))
    with pytest.raises(ValueError, match="gradient_accumulation_steps=1 but train.grad_accum=4"):
        preflight(load_params(root, ["train.accelerate_config=gpu-deepspeed-zero2", "train.grad_accum=4"]))
    with pytest.raises(ConfigError, match="train.batch_size"):
        load_params(root, ["train.batch_size=0"])
    assert not (tmp_path / "r").exists()


def test_world_size_mismatch_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate import Accelerator

    from lorag.training.train import EXPECTED_WORLD_SIZE_ENV, check_world_size

    monkeypatch.setenv(EXPECTED_WORLD_SIZE_ENV, "2")
    with pytest.raises(RuntimeError, match=r"started 1 process\(es\) but 2 were intended"):
        check_world_size(Accelerator(cpu=True))


def test_accelerate_configs_load_in_accelerate() -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    names = sorted(p.stem for p in (REPO_ROOT / "infra" / "accelerate").glob("*.yaml"))
    assert {"cpu-1proc", "cpu-2proc", "gpu-1", "gpu-ddp", "gpu-fsdp", "gpu-deepspeed-zero2", "multi-node"} <= set(names)
    for name in names:
        conf = load_config_from_file(str(REPO_ROOT / "infra" / "accelerate" / f"{name}.yaml"))
        assert conf.num_processes >= 1, name


# --- real accelerate launches -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_proc_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, project_factory):
    """One uninterrupted 2-process CPU run with debug records; also the reference for the resume test."""
    root = project_factory(tmp_path_factory.mktemp("ddp"), tiny_model_dir)
    params = load_params(root)
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORAG_TRAIN_DEBUG", "1")
        result = launch_training(params, root / "runs" / "full", on_line=lines.append)
    return params, result, lines


def _debug(run_dir: Path, rank: int, name: str) -> list[dict]:
    path = run_dir / "debug" / f"rank{rank}-{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_two_process_run_keeps_ranks_identical_and_rank0_writes(two_proc_run) -> None:
    _, result, lines = two_proc_run
    assert result.summary["world_size"] == 2 and result.summary["steps"] == 6
    assert [m["step"] for m in result.metrics] == [1, 2, 3, 4, 5, 6]
    assert all(m["tokens"] > 0 and m["tokens_per_s"] > 0 for m in result.metrics)
    assert sum(m["tokens"] for m in result.metrics) == result.summary["tokens"]
    assert any(line.startswith('{"event": "step"') for line in lines)
    finals = [_debug(result.run_dir, r, "final")[-1] for r in range(2)]
    assert finals[0]["checksum"] == finals[1]["checksum"]
    assert finals[0]["wrote"] and finals[1]["wrote"] == []
    # The two ranks read different rows at each step (data parallel, not duplicated work).
    b0, b1 = (_debug(result.run_dir, r, "batches")[1:] for r in range(2))
    assert [b["step"] for b in b0] == [b["step"] for b in b1] and b0 != b1
    assert [s for s, _ in ckpt.complete_checkpoints(result.run_dir)] == [4, 6]  # keeps the last 2
    params = two_proc_run[0]
    assert result.summary["base_model"] == params.train.base_model  # the name as given, not peft's local path
    assert result.summary["base_model_provenance"]["kind"] == "lorag-tiny-llama"
    assert result.summary["precision"] == "no"  # train.precision auto on CPU: fp32
    assert result.run.read_params() == params  # what the training processes loaded


@pytest.mark.slow
def test_completed_run_is_recorded_in_mlflow_by_the_caller(two_proc_run) -> None:
    import mlflow

    from lorag.retrain.train import record

    params, result, _ = two_proc_run
    assert not result.run.mlflow_file.exists()  # the launcher itself never talks to MLflow
    run_id = record(params, result)
    assert result.run.read_mlflow_run() == run_id
    mlflow.set_tracking_uri(params.tracking_uri)
    run = mlflow.get_run(run_id)
    assert run.data.tags["lorag.base_model"] == params.train.base_model
    assert run.data.params["train.lora.r"] == str(params.train.lora.r)
    assert run.data.metrics["steps"] == 6 and run.data.metrics["world_size"] == 2
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [1, 2, 3, 4, 5, 6]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "adapter")}
    assert "adapter/adapter_model.safetensors" in artifacts


@pytest.mark.slow
def test_kill_and_resume_continues_with_the_same_data_order(two_proc_run) -> None:
    params, reference, _ = two_proc_run
    run_dir = params.root / "runs" / "killed"
    RunFolder(run_dir).write_params(params)  # what launch_training does before it starts the processes
    argv, env = build_command(params, RunFolder(run_dir))
    env.update(LORAG_TRAIN_DEBUG="1", LORAG_TRAIN_DEBUG_STEP_SLEEP="1.0")
    proc = subprocess.Popen(argv, env=env, cwd=params.root, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not ckpt.complete_checkpoints(run_dir):
            assert proc.poll() is None, "training exited before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    seen = ckpt.complete_checkpoints(run_dir)
    metrics_lines = (run_dir / "metrics.jsonl").read_text().count("\n")
    time.sleep(3)  # an orphaned rank (torchrun puts ranks in their own sessions) would step on meanwhile
    assert ckpt.complete_checkpoints(run_dir) == seen
    assert (run_dir / "metrics.jsonl").read_text().count("\n") == metrics_lines
    resumed_at = seen[-1][0]
    assert resumed_at < 6
    # A save that was killed half-way must never be picked up.
    (ckpt.checkpoints_dir(run_dir) / ".tmp-step-5").mkdir()
    (ckpt.checkpoints_dir(run_dir) / "step-5").mkdir()  # no trainer_state.json: incomplete
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORAG_TRAIN_DEBUG", "1")
        result = launch_training(params, run_dir)
    assert result.summary["resumed_from_step"] == resumed_at
    assert not (ckpt.checkpoints_dir(run_dir) / ".tmp-step-5").exists()
    for rank in range(2):
        records = _debug(run_dir, rank, "batches")
        last_launch = max(i for i, r in enumerate(records) if r.get("launch"))
        assert records[last_launch]["start_step"] == resumed_at
        after = records[last_launch + 1 :]
        expected = [r for r in _debug(reference.run_dir, rank, "batches") if r.get("step", 0) > resumed_at]
        assert after == expected
    # RNG (dropout) and optimizer state came back too: the result equals the uninterrupted run's.
    assert _debug(run_dir, 0, "final")[-1]["checksum"] == _debug(reference.run_dir, 0, "final")[-1]["checksum"]
    assert [m["step"] for m in result.metrics] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_failed_run_raises_with_exit_code_and_tail(tiny_model_dir: Path, tmp_path: Path, project_factory) -> None:
    root = project_factory(tmp_path / "p", tiny_model_dir, train={"accelerate_config": "cpu-1proc"})
    params = load_params(root)
    # Corrupt the examples after preflight would pass: the child process fails reading them.
    (root / ".lorag" / "examples-clean" / "train.jsonl").write_text('{"id": "a"}\n')
    with pytest.raises(TrainingFailed) as info:
        launch_training(params, tmp_path / "run")
    assert info.value.returncode != 0
    assert any("invalid example line" in line for line in info.value.tail)
    assert not (tmp_path / "run" / "summary.json").exists()
    # Nothing was recorded: MLflow was never opened for the failed run.
    assert not Path(params.tracking_uri.removeprefix("sqlite:///")).exists()
