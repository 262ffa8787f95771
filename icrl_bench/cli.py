"""The `icrl-bench` command line: a thin layer over the package's functions."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np

from icrl_bench.envs.dynamics import optimal_success_probability, random_success_probability
from icrl_bench.envs.frozen_lake import make_source
from icrl_bench.envs.registration import ENV_SPECS

# Seeds for the calibration maps: far from anything an evaluation suite will use.
CALIBRATION_SEED = 20_251_125


def calibrate(env_id: str, n_maps: int, seed: int = CALIBRATION_SEED) -> dict[str, float]:
    """Exact random-policy and optimal success per episode, and mean shortest path, over `n_maps` maps of `env_id`."""
    kwargs = {k: v for k, v in ENV_SPECS[env_id][0].items() if k not in ("change_every", "episodes_per_task")}
    source = make_source(**kwargs)
    rng = np.random.default_rng(seed)
    tasks = [source.sample(rng) for _ in range(n_maps)]
    return {
        "random": float(np.mean([random_success_probability(t) for t in tasks])),
        "optimal": float(np.mean([optimal_success_probability(t) for t in tasks])),
        "shortest_path": float(np.mean([d for t in tasks for d in t.start_distances])),
    }


def cmd_envs(args: argparse.Namespace) -> int:
    """List the registered environment ids with their arguments and, unless --no-calibrate, calibration numbers."""
    print(f"{'id':34} {'random':>7} {'optimal':>8} {'path':>5}  description / arguments")
    for env_id, (kwargs, description) in ENV_SPECS.items():
        if args.calibrate > 0:
            c = calibrate(env_id, args.calibrate)
            numbers = f"{c['random']:7.3f} {c['optimal']:8.3f} {c['shortest_path']:5.2f}"
        else:
            numbers = f"{'':7} {'':8} {'':5}"
        shown = {k: ("<paper task>" if k == "task" else v) for k, v in kwargs.items()}
        print(f"{env_id:34} {numbers}  {description} {shown if shown else ''}")
    if args.calibrate > 0:
        print(
            f"\nrandom / optimal: exact success probability per episode of a uniform-random policy / of the best "
            f"policy that knows the map, averaged over {args.calibrate} maps; path: mean shortest start-to-goal moves."
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="icrl-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    envs = sub.add_parser("envs", help="list the registered environments with calibration numbers")
    envs.add_argument(
        "--calibrate", type=int, default=200, metavar="N", help="maps per id for the calibration numbers (0: none)"
    )
    envs.set_defaults(func=cmd_envs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
