"""The hyper-parameter sweep behind `QLearningAgent`'s defaults - on training maps, never the test suites.

    python -m icrl_bench.baselines.sweep [--trials 200]

Every combination of `GRID` plays the `id` suite's protocol (30 episodes per trial) on maps from the training
seed space (`suites.training_suite`); trials whose map also occurs in an evaluation suite are dropped. The
table is sorted by AUC (mean success over the trial); the best row became the defaults.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from icrl_bench.baselines.qlearning import QLearningAgent
from icrl_bench.protocol.runner import run_trials
from icrl_bench.protocol.suites import evaluation_map_ids, training_suite

GRID = {"alpha": [0.5, 0.9, 1.0], "gamma": [0.9, 0.95, 0.99], "q0": [0.5, 1.0, 2.0], "epsilon": [0.0, 0.05]}


def sweep(trials: int = 200, suite_name: str = "id") -> tuple[list[tuple[dict, float, float]], int]:
    """(params, AUC, standard error) for every grid point, best first, and the number of dropped trials."""
    suite = training_suite(suite_name, trials)
    banned = evaluation_map_ids()
    keep = [k for k in range(trials) if not any(t.map_id in banned for t in suite.tasks[k])]
    rows = []
    for values in itertools.product(*GRID.values()):
        params = dict(zip(GRID, values))
        records = list(run_trials(QLearningAgent(**params), suite, keep, seed=0))
        auc = np.array([np.mean([e.success for e in r.episodes]) for r in records])
        rows.append((params, float(auc.mean()), float(auc.std(ddof=1) / np.sqrt(len(auc)))))
    rows.sort(key=lambda row: -row[1])
    return rows, trials - len(keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    start = time.perf_counter()
    rows, dropped = sweep(args.trials)
    print(f"| alpha | gamma | q0 | epsilon | AUC (train maps) |\n|---|---|---|---|---|")
    for params, auc, se in rows:
        print(f"| {params['alpha']} | {params['gamma']} | {params['q0']} | {params['epsilon']} | {auc:.3f} +- {se:.3f} |")
    print(f"\n{args.trials - dropped} training trials ({dropped} dropped: map also in an evaluation suite), "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
