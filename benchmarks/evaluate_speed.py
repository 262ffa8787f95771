"""Wall time of `icrl-bench evaluate` on the whole default suite set, against the raw env loop.

    python benchmarks/evaluate_speed.py

For `random` and `explorer`: the wall time of evaluating all default suites (100 trials each, 1 worker,
results folder written; target: under 10 s each on a 2-core machine), their steps/s, and the ratio of those
steps/s to a bare loop of `env.step(random action)` on the same env class measured in the same run (the
protocol's overhead: agent calls, checks, records). Suite tasks are generated once before timing.
"""

from __future__ import annotations

import random
import tempfile
import time

from icrl_bench.agents import AgentSpec
from icrl_bench.envs import ICRLFrozenLakeEnv
from icrl_bench.protocol.evaluation import evaluate
from icrl_bench.protocol.suites import DEFAULT_SUITES, SUITES


def raw_steps_per_second(steps: int = 300_000) -> float:
    env = ICRLFrozenLakeEnv()
    env.reset(seed=0)
    rng = random.Random(0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(rng.randrange(4))
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - start)


def main() -> None:
    start = time.perf_counter()
    for suite in SUITES.values():
        suite.tasks  # generate and cache the task lists outside the timing
    print(f"suite task generation (once per process): {time.perf_counter() - start:.2f} s")
    raw = raw_steps_per_second()
    print(f"raw env loop: {raw:,.0f} steps/s")
    for agent in ("random", "explorer"):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            results = evaluate(AgentSpec(agent), DEFAULT_SUITES, out, progress=False)
            wall = time.perf_counter() - start
        steps = sum(m["steps"] for m in results["summary"].values())
        print(
            f"{agent:9} all {len(DEFAULT_SUITES)} suites: {wall:5.2f} s wall (target < 10 s)  {steps:,} steps  "
            f"{steps / wall:,.0f} steps/s = {steps / wall / raw:.2f} x the raw env loop"
        )


if __name__ == "__main__":
    main()
