"""Pick the better of a run's final checkpoint and its best.pt on fresh held-out *training-distribution* maps.

    python scripts/select_checkpoint.py runs/icrl-dqn-small [--trials 200]

best.pt was chosen by 32-trial quick evaluations (noisy, and selected on them); this plays both networks on
`--trials` other held-out trials of the training seed space (never an evaluation suite) and prints their mean
success (AUC), episode-1 and last-10 success, so that the shipped file is chosen on data it was not picked on.
"""

from __future__ import annotations

import argparse

import torch

from icrl_bench.training.agent import load_network
from icrl_bench.training.dqn import fresh_trials, play

SELECTION_TRIALS_FROM = 800_000_000  # neither the online (1e6...) nor the quick-evaluation (9e8...) range


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--trials", type=int, default=200)
    args = p.parse_args()
    torch.set_num_threads(1)
    trials, _ = fresh_trials("id", SELECTION_TRIALS_FROM, args.trials)
    for name in ("checkpoint.pt", "best.pt"):
        state = torch.load(f"{args.run}/{name}", weights_only=False)
        success, _ = play(load_network(f"{args.run}/{name}"), "id", trials, 30, 0.0, seed=0)
        print(f"{name:14s} update {state['step']:5d}: AUC {success.mean():.3f}, episode 1 {success[:, 0].mean():.3f}, "
              f"last 10 {success[:, -10:].mean():.3f} ({args.trials} held-out training trials)")


if __name__ == "__main__":
    main()
