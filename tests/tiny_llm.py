"""A tiny randomly initialised Llama and a tokenizer built here (no downloads): the LLM code paths in tests."""

from __future__ import annotations

import functools
from pathlib import Path

from icrl_bench.envs.text import LLAMA3_SPECIAL_TOKENS, TEXT_FORMATS


def _corpus() -> list[str]:
    from icrl_bench.envs import PAPER_STITCHING_TASK

    demos = [PAPER_STITCHING_TASK.rollout(d) for d in PAPER_STITCHING_TASK.demonstrations]
    words = " ".join(f"{n}" for n in range(200))
    actions = "left down right up " * 50 + "\nleft\ndown\nright\nup" * 50 + ">left>down>right>up" * 50
    return [fmt.text(demos) for fmt in TEXT_FORMATS.values()] * 20 + [words] * 5 + [actions]


@functools.lru_cache(maxsize=1)
def tokenizer():
    """A byte-level BPE trained on text of every format: action words with and without a space are one token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", *LLAMA3_SPECIAL_TOKENS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>")


def model(seed: int = 0, layers: int = 2):
    """A 2-layer Llama of width 32 over the tokenizer's vocabulary, random weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer()), hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=False, pad_token_id=0, bos_token_id=None, eos_token_id=None)
    return LlamaForCausalLM(config).eval()


def saved(folder: Path) -> Path:
    """The tiny model and its tokenizer saved in `folder` (for the CLI and multi-process runs)."""
    if not (folder / "config.json").exists():
        model().save_pretrained(folder)
        tokenizer().save_pretrained(folder)
    return folder
