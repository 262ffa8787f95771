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

    # Task switching (issue 12): a fresh task per sub-env at reset, and a new task every episode.
    n = 4096 if not args.quick else 512
    alone, batched = median_of(repeats, lambda: reset_seconds(n, False), lambda: reset_seconds(n, True))
    print(f"reset(seed=0) of {n} sub-envs: batched validity check {batched * 1000:8.0f} ms   one stream at a time "
          f"{alone * 1000:8.0f} ms   ratio {alone / batched:5.2f}  (target: under 50 ms)")  # fmt: skip
    switching = gym.make_vec("ICRLFrozenLake-v0", num_envs=1024, vectorization_mode="vector_entry_point",
                             episodes_per_task=1)  # fmt: skip
    keeping = gym.make_vec("ICRLFrozenLake-v0", num_envs=1024, vectorization_mode="vector_entry_point")
    switching.reset(seed=0)
    keeping.reset(seed=0)
    ours, ref = median_of(repeats, lambda: vector_steps_per_second(switching, int(300 * scale)),
                          lambda: vector_steps_per_second(keeping, int(300 * scale)))  # fmt: skip
    print(f"task switching episodes_per_task=1 {ours:12,.0f} steps/s   same task {ref:12,.0f} steps/s   ratio "
          f"{ours / ref:5.3f}  (target >= 0.25, or 1M steps/s; 1,024 sub-envs)")  # fmt: skip


def reset_seconds(n: int, batched: bool) -> float:
    """reset(seed=0) of `n` sub-envs, the new trials' first blocks checked in one batch or stream by stream."""
    import icrl_bench.envs.vector as vector

    env = gym.make_vec("ICRLFrozenLake-v0", num_envs=n, vectorization_mode="vector_entry_point")
    original = vector.prefill
    if not batched:
        vector.prefill = lambda streams: None
    try:
        start = time.perf_counter()
        env.reset(seed=0)
        return time.perf_counter() - start
    finally:
        vector.prefill = original


if __name__ == "__main__":
    main()
