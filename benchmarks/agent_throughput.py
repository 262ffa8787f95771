"""Steps per second of a trained transformer agent: one forward pass for all trials vs one per trial.

    python benchmarks/agent_throughput.py [--model icrl-dqn-small] [--trials 100]

Plays the same `id` trials twice with the shipped model: through the batched interface with all trials in one
batch (`DQNAgent`, one `IncrementalBatch` forward pass per step), and with batch size 1 (each trial on its own,
still incremental: the cost of one forward pass per trial and step). Prints steps/s of both whole runs, the
agent's own decisions/s while (nearly) the whole batch is playing, their ratios (measured in the same run;
target: batched >= 10x while the batch is full), and how many trials played identically both ways.
"""

from __future__ import annotations

import argparse
import time

import torch

from icrl_bench.models import reference_agent
from icrl_bench.protocol import run_trials
from icrl_bench.protocol.runner import ProtocolOptions
from icrl_bench.protocol.suites import SUITES


def timed(name: str, trials: list[int], batch_size: int) -> tuple[float, int, list, float]:
    agent = reference_agent(name)
    calls: list[tuple[float, int]] = []  # (seconds, trials) of each act_batch call
    act = agent.act_batch

    def timed_act(obs, which):  # noqa: ANN001, ANN202
        t = time.perf_counter()
        out = act(obs, which)
        calls.append((time.perf_counter() - t, len(which)))
        return out

    agent.act_batch = timed_act
    start = time.perf_counter()
    records = list(run_trials(agent, SUITES["id"], trials, options=ProtocolOptions(batch_size=batch_size, step_timeout=None)))
    seconds = time.perf_counter() - start
    steps = sum(e.steps for r in records for e in r.episodes)
    full = [(t, n) for t, n in calls if n >= 0.9 * min(batch_size, len(trials))]
    decisions_per_second = sum(n for _, n in full) / max(sum(t for t, _ in full), 1e-9)
    return seconds, steps, sorted(([e.success for e in r.episodes], r.trial) for r in records), decisions_per_second


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="icrl-dqn-small")
    p.add_argument("--trials", type=int, default=100)
    args = p.parse_args()
    torch.set_num_threads(1)
    trials = list(range(args.trials))
    single = timed(args.model, trials[: max(args.trials // 10, 1)], 1)  # a tenth of the trials: it is slow
    batched = timed(args.model, trials, args.trials)
    check = timed(args.model, trials[: max(args.trials // 10, 1)], args.trials)
    same = sum(a == b for a, b in zip(check[2], single[2]))
    s_rate, b_rate = single[1] / single[0], batched[1] / batched[0]
    print(f"{args.model}, one torch thread, suite id")
    print(f"  batch 1 (one forward pass per trial and step): {s_rate:9.0f} steps/s ({single[1]} steps)")
    print(f"  batch {args.trials:<3} (one forward pass per step):        {b_rate:9.0f} steps/s ({batched[1]} steps)")
    print(f"  ratio: {b_rate / s_rate:.1f}x over whole runs (the batch shrinks as trials finish; the last trials")
    print(f"         play alone)")
    print(f"  agent decisions/s while >= 90% of the batch is playing: batch 1 {single[3]:.0f}, batch {args.trials}"
          f" {batched[3]:.0f}: {batched[3] / single[3]:.1f}x (target >= 10)")
    print(f"  the same {len(single[2])} trials played batched and alone: {same} identical (float sums may flip a tie)")


if __name__ == "__main__":
    main()
