"""Build the tiny local base model used by the demo and the tests: nothing downloads.

A byte-level BPE tokenizer is trained on local text, a ChatML chat template with `{% generation %}` markers is
attached (so `apply_chat_template(..., return_assistant_tokens_mask=True)` marks the tokens the loss is on), and
a `LlamaConfig` of the `train.tiny_model` shape gets seeded random weights. Same text + same seed = same files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from lorag.config import Params
from lorag.training.base_model import PROVENANCE_FILE, TINY_KIND

PAD_TOKEN = "<|pad|>"
EOS_TOKEN = "<|im_end|>"
BOS_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS = (BOS_TOKEN, "<|im_start|>", EOS_TOKEN, PAD_TOKEN)

# The assistant turn's content and its closing <|im_end|> are inside the generation block: the model must learn
# both what to answer and when to stop. The "\n" after <|im_end|> is outside: it is template layout.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Fallback training text when the caller has no documents: enough English for a few hundred merges.
DEFAULT_TEXTS = (
    "The quick brown fox jumps over the lazy dog while the farmer watches from the old wooden gate.",
    "A retrieval index keeps documents searchable; when a document changes, only its chunks are embedded again.",
    "Fine-tuning with low-rank adapters trains a small number of extra weights and leaves the base model as it is.",
    "Questions about the library are answered from the documentation, and every answer cites its sources.",
    "The river runs past the mill, through the village and into the sea, carrying leaves in the autumn.",
    "Configuration lives in one file; every stage reads the keys it needs and records the values it used.",
    "To install the package, create a virtual environment, activate it and run the installer with constraints.",
    "Engineers review the evaluation report before a new model version is promoted to production.",
    "Session objects manage transactions: begin, add objects, flush pending changes and commit or roll back.",
    "Numbers such as 1, 2, 3, 10, 42, 100 and 2024 appear in dates, versions, counts and prices.",
    "What is the capital of France? Paris is the capital and the largest city of France.",
    "Why does the test fail? Because the expected value was computed with an older version of the data.",
)


def train_tokenizer(texts: Iterable[str], vocab_size: int):  # -> PreTrainedTokenizerFast
    """A byte-level BPE tokenizer with ChatML special tokens and the generation-marked chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # trim_offsets=False: the assistant mask is computed from character offsets; trimming would drop the
    # leading-space bytes of tokens from the mask.
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, unk_token=None
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.model_max_length = 1 << 20
    return fast


def build_tiny_base_model(params: Params, out_dir: Path, texts: Iterable[str] | None = None) -> Path:
    """Train the tokenizer, build a seeded random Llama of the `train.tiny_model` shape, save both to out_dir.

    `texts` is any iterator of strings (the lead feeds the sample documents); without it a built-in English
    paragraph list is used. Returns out_dir, loadable with `AutoModelForCausalLM/AutoTokenizer.from_pretrained`.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = params.train.tiny_model
    if shape.hidden_size % shape.num_heads:
        raise ValueError(
            f"train.tiny_model.hidden_size ({shape.hidden_size}) must be divisible by num_heads "
            f"({shape.num_heads}): change one of them in params.yaml."
        )
    corpus = [t for t in (texts if texts is not None else DEFAULT_TEXTS) if t and t.strip()]
    if not corpus:
        raise ValueError("build_tiny_base_model got no non-empty text to train the tokenizer on.")
    tokenizer = train_tokenizer(corpus, shape.vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_heads,
        max_position_embeddings=max(2048, params.train.max_seq_len),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        use_cache=True,
    )
    # Seed the weights only, then restore the global RNG so a caller's randomness is not reset by us.
    state = torch.random.get_rng_state()
    torch.manual_seed(params.train.seed)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    provenance = {"kind": TINY_KIND, "seed": params.train.seed, "shape": shape.model_dump()}
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    for f in out_dir.iterdir():
        f.chmod(0o644)  # safetensors are written 0600; other users (CI, serving) must read them
    return out_dir
