"""Environment throughput, measured against Gymnasium's FrozenLake-v1 in the same run.

    python benchmarks/env_throughput.py [--quick]

Prints, each as the median of several interleaved repeats:
  1. single-env steps/s of ``gym.make("ICRLFrozenLake-v0")`` vs ``gym.make("FrozenLake-v1")``   (target ratio >= 1.0)
  2. batched steps/s of our vector env at N=4096 vs ``SyncVectorEnv`` of 16 ``FrozenLake-v1``  (target ratio >= 100)
  3. valid in-distribution maps generated per second on one core, as arrays (target >= 100,000/s) and as
     TaskSpec objects (>= 20,000/s)
  4. reset(seed=0) of 4,096 sub-envs (target < 50 ms), beside what seeding their numpy streams alone takes
  5. steps/s of 1,024 sub-envs with a new task every episode against the same env keeping its tasks
     (target >= 1M steps/s or ratio >= 0.25), over steps 3,000-6,000 after reset (and over the first 3,000)
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


def vector_steps_per_second(env: gym.vector.VectorEnv, steps: int, reset: bool = True) -> float:
    n = env.num_envs
    actions = np.random.default_rng(0).integers(4, size=(steps, n))
    if reset:
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
    arrays, objects = median_of(repeats, lambda: valid_maps_per_second(int(200_000 * scale), next(counter)),
                                lambda: maps_per_second(int(20_000 * scale), next(counter)))  # fmt: skip
    print(f"map generator {arrays:12,.0f} valid ID maps/s as arrays (what the vector env reads)     (target >= 100,000)")
    print(f"              {objects:12,.0f} valid ID maps/s as TaskSpec objects (sample_many)        (target >= 20,000)")

    # Task switching (issue 12): a fresh task per sub-env at reset, and a new task every episode.
    n = 4096 if not args.quick else 512
    reset, seeding = median_of(repeats, lambda: reset_seconds(n), lambda: seeding_seconds(n))
    print(f"reset(seed=0) of {n} sub-envs {reset * 1000:8.0f} ms, of which seeding their {2 * n} numpy streams "
          f"alone takes {seeding * 1000:5.0f} ms  (target: under 50 ms)")  # fmt: skip
    steps = int(3000 * scale)
    (fresh, ours), (_, ref) = median_of(repeats, lambda: switching_steps_per_second(1, steps),
                                        lambda: switching_steps_per_second(None, steps))  # fmt: skip
    print(f"task switching episodes_per_task=1 {ours:12,.0f} steps/s   same task {ref:12,.0f} steps/s   ratio "
          f"{ours / ref:5.3f}  (target: >= 1M steps/s, or ratio >= 0.25; 1,024 sub-envs, steps {steps:,}-"
          f"{2 * steps:,} after reset; the first {steps:,}: {fresh:,.0f} steps/s)")  # fmt: skip


def valid_maps_per_second(n: int, seed: int) -> float:
    """Valid maps of one stream as arrays (`TaskStream.next_ref`: its blocks, no TaskSpec built)."""
    stream = MapGenerator().stream(seed)
    start = time.perf_counter()
    for _ in range(n):
        stream.next_ref()
    return n / (time.perf_counter() - start)


def reset_seconds(n: int) -> float:
    env = gym.make_vec("ICRLFrozenLake-v0", num_envs=n, vectorization_mode="vector_entry_point")
    start = time.perf_counter()
    env.reset(seed=0)
    return time.perf_counter() - start


def seeding_seconds(n: int) -> float:
    """What a reset of `n` sub-envs cannot avoid: each sub-env's Gymnasium stream and its task stream."""
    from gymnasium.utils import seeding

    from icrl_bench.envs.schedule import task_rng

    start = time.perf_counter()
    for i in range(n):
        seeding.np_random(i)
        task_rng(i)
    return time.perf_counter() - start


def switching_steps_per_second(episodes_per_task: int | None, steps: int) -> tuple[float, float]:
    """Steps/s of 1,024 sub-envs over the first `steps` steps after reset(seed=0) and over the next `steps`
    (random actions). Each sub-env's task stream draws blocks of 32, 64, ... 4,096 candidates, so the first
    ~2,500 steps of a new task every episode draw many small blocks; after them the rate is what a long run
    sees."""
    env = gym.make_vec("ICRLFrozenLake-v0", num_envs=1024, vectorization_mode="vector_entry_point",
                       episodes_per_task=episodes_per_task)  # fmt: skip
    env.reset(seed=0)
    return vector_steps_per_second(env, steps, reset=False), vector_steps_per_second(env, steps, reset=False)


if __name__ == "__main__":
    main()
