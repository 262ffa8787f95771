"""`OracleAgent`: privileged - it is shown the map - and acts optimally. The ceiling of every suite.

Deterministic tasks: a shortest path to the nearest goal (first action in 0..3 order that brings the goal one
step nearer). Slippery tasks: finite-horizon value iteration, maximising the probability of reaching a goal
within the steps left in the episode.
"""

from __future__ import annotations

import numpy as np

from icrl_bench.envs.dynamics import compile_task, optimal_q_tables
from icrl_bench.envs.task import TaskSpec, Transition
from icrl_bench.protocol.agent import Agent, TrialInfo


class OracleAgent(Agent):
    """Optimal play with knowledge of the task (see the module docstring)."""

    privileged = True

    def begin_trial(self, info: TrialInfo) -> None:
        self.task: TaskSpec | None = None
        self.steps = 0

    def reveal(self, task: TaskSpec) -> None:
        self.task = task
        self.q = optimal_q_tables(task) if task.success_rate < 1.0 else None
        if self.q is None:  # deterministic: best action per tile from the BFS distances
            dist = task.goal_distances
            tables = compile_task(task)
            self.best = []
            for s in range(task.n_tiles):
                options = [
                    a
                    for a in range(4)
                    if dist[s] is not None and dist[tables.next_tile[s][task.direction(a)]] == dist[s] - 1
                ]
                self.best.append(options[0] if options else 0)

    def act(self, obs: int) -> int:
        if self.task is None:
            raise RuntimeError("the oracle needs reveal(task) before acting")
        if self.q is None:
            return self.best[obs]
        left = min(self.task.max_steps - self.steps, len(self.q)) - 1
        return int(np.argmax(self.q[max(left, 0), obs]))

    def observe(self, transition: Transition, demonstration: bool = False) -> None:
        if demonstration:
            return
        self.steps = 0 if transition.terminated or transition.truncated else self.steps + 1
