"""Agent steps at a long context: our cache and attention (`training/kv.py`) against `transformers`' defaults.

    python benchmarks/llm_long_context.py [--model smollm2-135m] [--trials 25] [--context 2048] [--threads 1]
    python benchmarks/llm_long_context.py --tiny      # the tests' tiny random Llama: a smoke run

An evaluation batch of `--trials` trials, each with `--context` tokens already in the cache, then `--steps` steps
of 4 new tokens each (what `DQNAgent` feeds: the last action word, the outcome, the next observation): the
regime of an agent stuck until the step limit, which is where an LLM evaluation spends its time. The same
`IncrementalBatch` plays both variants on the same tokens:

- default: `DynamicCache` (a `torch.cat` of the whole cache every step) and sdpa attention (which copies the
  key/value heads to every query head, `repeat_kv`, whenever a mask is given and more than one token is fed);
- ours: `GrowingLayer` (writes only the new tokens) and `grouped_sdpa` (query groups folded, keys read once).

Prints ms a step, decisions/s and the ratio, with the largest Q difference (exact rearrangements: it should be
float rounding). The model plays in bf16 weights, as the agent does. Target: none (information); exit 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def network(args: argparse.Namespace):
    from icrl_bench.training.config import LLMConfig
    from icrl_bench.training.text_model import TextQNetwork

    if args.tiny:
        sys.path.insert(0, str(ROOT / "tests"))
        import tiny_llm

        return TextQNetwork(LLMConfig(precision="fp32", text_format="plain"), model=tiny_llm.model(),
                            tokenizer=tiny_llm.tokenizer(), adapter="none")  # fmt: skip
    return TextQNetwork(LLMConfig(model=args.model, precision="bf16", text_format="plain"), adapter="none")


def play(net, ours: bool, fills, steps) -> tuple[float, torch.Tensor]:
    from transformers import DynamicCache

    from icrl_bench.training import kv
    from icrl_bench.training.model import IncrementalBatch

    attention = kv.ATTENTION if ours else "sdpa"
    net.model.set_attn_implementation(attention)
    batch = IncrementalBatch(net, fills[0].shape[0], window=None)
    batch.cache = kv.new_cache() if ours else DynamicCache()
    for chunk in fills:
        batch.feed([[(int(t),) for t in row] for row in chunk])
    qs = []
    start = time.perf_counter()
    for chunk in steps:
        qs.append(batch.feed([[(int(t),) for t in row] for row in chunk]).clone())
    return (time.perf_counter() - start) / len(steps), torch.stack(qs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m", help="hub id, local folder or short name")
    p.add_argument("--tiny", action="store_true", help="the tests' tiny random Llama: a smoke run")
    p.add_argument("--trials", type=int, default=25, help="trials in the batch (the evaluation's --batch-size)")
    p.add_argument("--context", type=int, default=2048, help="tokens already in each trial's cache")
    p.add_argument("--steps", type=int, default=8, help="timed steps of 4 tokens")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    net = network(args).eval()
    g = torch.Generator().manual_seed(0)
    vocab = min(len(net.tokenizer), 1000)
    chunk = 256
    fills = [torch.randint(0, vocab, (args.trials, min(chunk, args.context - i)), generator=g)
             for i in range(0, args.context, chunk)]  # fmt: skip
    steps = [torch.randint(0, vocab, (args.trials, 4), generator=g) for _ in range(args.steps)]
    default, q_default = play(net, False, fills, steps)
    ours, q_ours = play(net, True, fills, steps)
    gap = float((q_default - q_ours).abs().max())
    print(f"{args.trials} trials at {args.context:,} tokens of context, 4 new tokens a step, {args.threads} thread(s)")
    print(f"    default (DynamicCache + sdpa)   {default * 1000:9.1f} ms/step {args.trials / default:9.1f} decisions/s")
    print(f"    ours (GrowingLayer + grouped)   {ours * 1000:9.1f} ms/step {args.trials / ours:9.1f} decisions/s")
    print(f"ratio {default / ours:.2f}x (largest Q difference {gap:.2g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
