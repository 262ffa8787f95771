"""Choose how a trained RL^2 policy is shipped, on held-out *training-distribution* trials only.

    python scripts/select_rl2.py runs/rl2-mix/policy.pt runs/rl2-mix/best.pt [--trials 100] [--suites id,nonstationary]

Plays each policy file in each mode (greedy; sampling, `RL2Agent(sample=True)`; either with the
demonstrations shown) on `--trials` trials of each suite's
training seed space (`training_suite`: the suite's generator and schedule, other seeds; maps of every evaluation
suite skipped) and prints AUC, episode-1 and last-10 success. Never an evaluation suite: the numbers choose the
file and the mode without looking at what the benchmark scores.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from icrl_bench.protocol.runner import run_trials
from icrl_bench.protocol.suites import training_suite
from icrl_bench.training.dqn import fresh_trials
from icrl_bench.training.rl2 import rl2_agent

SELECTION_TRIALS_FROM = 800_000_000  # as scripts/select_checkpoint.py: neither training nor quick-evaluation trials


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("policies", nargs="+")
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--suites", default="id,nonstationary")
    p.add_argument("--modes", default="greedy,sample", help="greedy, sample, greedy-demos, sample-demos (-demos: "
                   "the demonstrations are shown to the policy)")
    args = p.parse_args()
    torch.set_num_threads(1)
    for name in args.suites.split(","):
        trials, _ = fresh_trials(name, SELECTION_TRIALS_FROM, args.trials)
        suite = dataclasses.replace(training_suite(name), n_trials=0)
        for path in args.policies:
            for mode in args.modes.split(","):
                agent = rl2_agent(path, sample=mode.startswith("sample"), demonstrations=mode.endswith("-demos"))
                records = list(run_trials(agent, suite, trials))
                s = np.array([[e.success for e in r.episodes] for r in records])
                print(f"{name:14s} {path:32s} {mode}: AUC {s.mean():.3f}, "
                      f"episode 1 {s[:, 0].mean():.3f}, last 10 {s[:, -10:].mean():.3f} ({len(trials)} trials)",
                      flush=True)


if __name__ == "__main__":
    main()
