"""Environment throughput, measured against Gymnasium's FrozenLake-v1 in the same run.

    python benchmarks/env_throughput.py [--quick]

Prints, each as the median of several interleaved repeats:
  1. single-env steps/s of ``gym.make("ICRLFrozenLake-v0")`` vs ``gym.make("FrozenLake-v1")``   (target ratio >= 1.0)
  2. batched steps/s of our vector env at N=4096 vs ``SyncVectorEnv`` of 16 ``FrozenLake-v1``  (target ratio >= 100)
  3. valid in-distribution maps generated per second on one core                              (target >= 20,000/s)
Random actions; episodes reset on termination or truncation (autoreset in the vector envs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

# One core for numpy, as the map-generation target says (and so the ratios do not depend on BLAS threads).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import icrl_bench  # noqa: E402,F401
from icrl_bench.envs import MapGenerator  # noqa: E402


def single_steps_per_second(env: gym.Env, steps: int) -> float:
    actions = np.random.default_rng(0).integers(4, size=steps).tolist()
    env.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - start)


def vector_steps_per_second(env: gym.vector.VectorEnv, steps: int) -> float:
    n = env.num_envs
    actions = np.random.default_rng(0).integers(4, size=(steps, n))
    env.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    return steps * n / (time.perf_counter() - start)


def maps_per_second(n: int, seed: int) -> float:
    start = time.perf_counter()
    maps = MapGenerator().sample_many(n, seed)
    return len(maps) / (time.perf_counter() - start)


def median_of(repeats: int, *measures):
    results = [[] for _ in measures]
    for _ in range(repeats):
        for out, measure in zip(results, measures):
            out.append(measure())
    return [statistics.median(r) for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats (a smoke run)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 5
    scale = 0.1 if args.quick else 1.0

    ours_env = gym.make("ICRLFrozenLake-v0")
    ref_env = gym.make("FrozenLake-v1", is_slippery=False)
    steps = int(100_000 * scale)
    ours, ref = median_of(
        repeats, lambda: single_steps_per_second(ours_env, steps), lambda: single_steps_per_second(ref_env, steps)
    )
    print(f"single env    ours {ours:12,.0f} steps/s   FrozenLake-v1 {ref:12,.0f} steps/s   ratio {ours / ref:6.2f}  (target >= 1.0)")

    ours_vec = gym.make_vec("ICRLFrozenLake-v0", num_envs=4096, vectorization_mode="vector_entry_point")
    ref_vec = gym.vector.SyncVectorEnv([lambda: gym.make("FrozenLake-v1", is_slippery=False) for _ in range(16)])
    ours_vec.reset(seed=0)  # draws 4096 tasks once, outside the timing
    ours, ref = median_of(
        repeats,
        lambda: vector_steps_per_second(ours_vec, int(500 * scale)),
        lambda: vector_steps_per_second(ref_vec, int(3000 * scale)),
    )
    print(f"batched env   ours {ours:12,.0f} steps/s   SyncVectorEnv(16) {ref:8,.0f} steps/s   ratio {ours / ref:6.1f}  (target >= 100)")

    counter = iter(range(1000))
    rate = statistics.median(maps_per_second(int(20_000 * scale), next(counter)) for _ in range(repeats))
    print(f"map generator {rate:12,.0f} valid ID maps/s on one core                          (target >= 20,000)")


if __name__ == "__main__":
    main()
