"""One DQN update of the paper's setting on a Llama-3.1-8B-shaped model: seconds, tokens/s and peak GPU memory.

    python benchmarks/llm_gpu_step.py [--batch 10] [--tokens 4096] [--layers 32] [--repeats 1]
    python benchmarks/llm_gpu_step.py --dry-run      # the same code on the CPU: 1 layer, width 256, 64 tokens, fp32

The model has Llama 3.1 8B's shape (width 4,096, MLP 14,336, 32 layers, 32 heads, 8 KV heads, vocabulary 128,256,
rope theta 500,000) with RANDOM weights, built directly in bf16 on the GPU (no download, no tokenizer). It goes
into `TextQNetwork` as the paper preset trains it: IA3 adapters ``online`` and ``target`` on k_proj, v_proj and
down_proj, bf16 weights, gradient checkpointing, the plain format, offset 0; a stand-in tokenizer gives the four
action words one token id each. A synthetic batch of `batch` x `tokens` random token ids with the keys of
`text_batch` (a decision slot every 3-4 tokens, episodes of ~7 steps, some rewarded) goes through one full update
(`dqn_loss` with the paper's loss, reward x30, gamma 0.9; backward; gradient clip; AdamW; Polyak) after one warm-up
update. Printed: seconds per update, tokens/s (each sequence token counted once), peak GPU memory
(`torch.cuda.max_memory_allocated`, weights included) and, beside them, the paper's budget: 10 x 4,096 tokens per
update and one epoch over 250 maps' data of ~625 updates, projected in hours at the measured tokens/s (meaningful
at the full shape and size only).

`run(...)` returns the numbers as a dict (``tests/test_llm.py``'s gpu-marked test calls it on 2 layers).
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from typing import Any

PAPER = {"batch": 10, "tokens": 4096, "updates": 625}  # per update; one epoch over 250 maps (~25 sets each)
ACTION_IDS = (1000, 2000, 3000, 4000)  # arbitrary token ids standing for the four action words


class ActionTokenizer:
    """What `TextQNetwork` asks of a tokenizer for a synthetic batch: one token id per action word.

    With ``text_format="plain"`` and a numeric ``q_offset`` it calls only ``encode(word, add_special_tokens=False)``
    on the action words (``get_vocab`` would be asked by ``text_format="auto"``)."""

    pad_token_id = 0

    def __init__(self, words: tuple[str, ...], ids: tuple[int, ...] = ACTION_IDS) -> None:
        self.ids = dict(zip(words, ids))

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        if text not in self.ids:
            raise KeyError(f"the stand-in tokenizer knows only the action words {list(self.ids)}, not {text!r}")
        return [self.ids[text]]

    def get_vocab(self) -> dict[str, int]:
        return {}


def llama_8b_config(layers: int = 32, hidden: int = 4096, intermediate: int = 14336, vocab: int = 128256) -> Any:
    """Llama 3.1 8B's shape (optionally fewer layers or a smaller width for a quick run)."""
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                       num_attention_heads=32, num_key_value_heads=8, vocab_size=vocab, rope_theta=500000.0,
                       max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=False,
                       bos_token_id=None, eos_token_id=None, pad_token_id=None)  # fmt: skip


def random_model(config: Any, device: Any, dtype: Any) -> Any:
    """A `LlamaForCausalLM` with random weights, allocated directly on `device` in `dtype` (never in fp32 on
    the CPU first)."""
    import torch
    from transformers import LlamaForCausalLM

    with torch.device(device):
        try:
            model = LlamaForCausalLM._from_config(config, dtype=dtype)
        except TypeError:  # transformers before `dtype` replaced `torch_dtype`
            model = LlamaForCausalLM._from_config(config, torch_dtype=dtype)
    if next(model.parameters()).dtype != dtype:
        raise RuntimeError(f"the model was built in {next(model.parameters()).dtype}, not {dtype}")
    return model


def synthetic_batch(batch: int, tokens: int, vocab: int, action_ids: list[int], seed: int = 0) -> dict[str, Any]:
    """Random token ids with `text_batch`'s keys: a decision slot every 3-4 tokens (the plain format's ~3.4
    tokens a step), the taken action's token right after each slot, episodes ending with probability 1/7 a step
    (rewarded 40% of the time), every slot but the last a trained decision."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    input_ids = rng.integers(5000, vocab, size=(batch, tokens))
    rows = []
    for b in range(batch):
        slots = np.cumsum(np.concatenate([[2], rng.choice([3, 4], size=tokens)]))
        slots = slots[slots < tokens]
        n = len(slots)
        taken = rng.integers(4, size=n)
        after = slots + 1 < tokens
        input_ids[b, slots[after] + 1] = np.asarray(action_ids)[taken[after]]
        ends = rng.random(n) < 1 / 7
        gained = (ends & (rng.random(n) < 0.4)).astype(np.float64)
        nxt = np.where(np.arange(n) + 1 < n, np.arange(n) + 1, -1)
        rows.append((slots, taken, gained, np.where(ends, -1, nxt), nxt))
    width = max(len(r[0]) for r in rows)
    out = {"slots": np.zeros((batch, width), np.int64), "decision": np.zeros((batch, width), bool),
           "taken": np.zeros((batch, width), np.int64), "gained": np.zeros((batch, width)),
           "label": np.full((batch, width), -1), "next_in": np.full((batch, width), -1),
           "next_across": np.full((batch, width), -1)}  # fmt: skip
    for b, (slots, taken, gained, nxt_in, nxt) in enumerate(rows):
        n = len(slots)
        out["slots"][b, :n], out["taken"][b, :n], out["gained"][b, :n] = slots, taken, gained
        out["decision"][b, :n] = np.arange(n) + 1 < n
        out["next_in"][b, :n], out["next_across"][b, :n] = nxt_in, nxt
    return {k: torch.from_numpy(v) for k, v in out.items()} | {
        "input_ids": torch.from_numpy(input_ids.astype(np.int64)),
        "attention_mask": torch.ones(batch, tokens, dtype=torch.long),
    }


def _peak_rss_gib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**30 if sys.platform == "darwin" else 2**20)


def run(batch: int = 10, tokens: int = 4096, layers: int = 32, *, hidden: int = 4096, intermediate: int = 14336,
        repeats: int = 1, device: str | None = None, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Time `repeats` DQN updates (after one warm-up update) of the paper's setting; see the module docstring.

    On CUDA (the default where there is one) the model is bf16 with precision ``bf16``; on the CPU (``--dry-run``)
    fp32. ``peak_gib``: `torch.cuda.max_memory_allocated` over the warm-up and timed updates (weights included),
    or on the CPU the process's peak RSS.
    """
    import torch

    from icrl_bench.envs.text import TEXT_FORMATS
    from icrl_bench.training.config import LLMConfig, TrainConfig
    from icrl_bench.training.dqn import update
    from icrl_bench.training.text_model import TextQNetwork

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = torch.device(device).type == "cuda"
    torch.manual_seed(seed)
    config = llama_8b_config(layers, hidden, intermediate)
    model = random_model(config, device, torch.bfloat16 if cuda else torch.float32)
    llm = LLMConfig(model="random-llama-3.1-8b-shape", adapter="ia3", precision="bf16" if cuda else "fp32",
                    gradient_checkpointing=True, text_format="plain", q_offset="0")  # fmt: skip
    net = TextQNetwork(llm, model=model, tokenizer=ActionTokenizer(TEXT_FORMATS["plain"].action_words))
    # Gradient checkpointing of `transformers` is active only in training mode (`from_pretrained` returns a model
    # in eval mode): set it, and report whether the decoder layers really checkpoint.
    net.train()
    layer = net.model.get_base_model().model.layers[0]
    checkpointing = bool(getattr(layer, "gradient_checkpointing", False) and layer.training)
    cfg = TrainConfig(network="llm", data="x", reward_scale=30.0, loss="paper", gamma=0.9, lr=1e-2, llm=llm)
    data = {k: v.to(device) for k, v in synthetic_batch(batch, tokens, config.vocab_size, net.action_ids, seed).items()}
    params = net.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def one_update() -> float:
        loss, _ = update(net, opt, data, cfg)  # the trainer's own update
        return loss

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    losses = [one_update()]  # warm-up: allocator, kernels, AdamW state
    sync()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        losses.append(one_update())
        sync()
        seconds.append(time.perf_counter() - start)
    per_update = sorted(seconds)[len(seconds) // 2]
    tokens_per_s = batch * tokens / per_update
    paper_tokens = PAPER["batch"] * PAPER["tokens"]
    return {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "layers": layers, "hidden": hidden, "batch": batch, "tokens": tokens,
        "dtype": "bf16" if cuda else "fp32", "checkpointing": checkpointing,
        "parameters_b": sum(p.numel() for p in net.model.parameters()) / 1e9,
        "seconds_per_update": per_update, "tokens_per_s": tokens_per_s,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else _peak_rss_gib(),
        "peak_kind": "torch.cuda.max_memory_allocated" if cuda else "peak RSS of the process",
        "losses": losses, "loss_finite": all(math.isfinite(x) for x in losses),
        "paper_seconds_per_update": paper_tokens / tokens_per_s,
        "paper_epoch_hours": PAPER["updates"] * paper_tokens / tokens_per_s / 3600,
    }  # fmt: skip


def report(r: dict[str, Any]) -> str:
    full = r["layers"] == 32 and r["hidden"] == 4096 and r["dtype"] == "bf16"
    shape = "Llama-3.1-8B shape" if full else f"{r['layers']} layer(s) of width {r['hidden']} (not the 8B shape)"
    lines = [
        (f"{shape}, random weights, {r['parameters_b']:.2f}B parameters, {r['dtype']}, IA3 online+target, "
         f"gradient checkpointing {'on' if r['checkpointing'] else 'OFF'}, {r['device']}"),
        (f"  one DQN update of {r['batch']} x {r['tokens']:,} tokens: {r['seconds_per_update']:.3f} s, "
         f"{r['tokens_per_s']:,.0f} tokens/s, peak {r['peak_gib']:.2f} GiB ({r['peak_kind']})"),
        f"  losses (warm-up, timed): {', '.join(f'{x:.4g}' for x in r['losses'])}; finite: {r['loss_finite']}",
        (f"  the paper's budget: {PAPER['batch']} x {PAPER['tokens']:,} tokens per update, one epoch of 250 maps' "
         f"data ~{PAPER['updates']} updates"),
        (f"  projected at this run's tokens/s: {r['paper_seconds_per_update']:.2f} s per paper update, "
         f"{r['paper_epoch_hours']:.2f} h per epoch" + ("" if full else " (meaningless below the full shape)")),
    ]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=None, help="sequences per update (default 10)")
    parser.add_argument("--tokens", type=int, default=None, help="tokens per sequence (default 4096; dry run 64)")
    parser.add_argument("--layers", type=int, default=None, help="decoder layers (default 32; dry run 1)")
    parser.add_argument("--repeats", type=int, default=1, help="timed updates after the warm-up (median)")
    parser.add_argument("--dry-run", action="store_true", help="on the CPU in fp32: 1 layer, width 256, 64 tokens")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (dry run)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    batch = args.batch or PAPER["batch"]
    if args.dry_run:
        r = run(batch, args.tokens or 64, args.layers or 1, hidden=256, intermediate=896, repeats=args.repeats,
                device="cpu")  # fmt: skip
    elif not torch.cuda.is_available():
        print("llm_gpu_step: needs a CUDA GPU (--dry-run runs the same code on the CPU at a toy size)")
        return 2
    else:
        r = run(batch, args.tokens or PAPER["tokens"], args.layers or 32, repeats=args.repeats)
    print(report(r))
    return 0 if r["loss_finite"] else 1


if __name__ == "__main__":
    sys.exit(main())
