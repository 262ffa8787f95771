"""`QLearningAgent`: tabular Q-learning from scratch inside each trial - the classical in-context baseline.

Optimistic initial values make it try every action; it learns from its own steps and from demonstrations.
The defaults come from a sweep on *training* maps (`icrl_bench.baselines.sweep`), never on the test suites.
"""

from __future__ import annotations

import random

from icrl_bench.envs.task import Transition
from icrl_bench.protocol.agent import Agent, TrialInfo


class QLearningAgent(Agent):
    """Tabular Q-learning with optimistic initialisation and epsilon-greedy actions (ties broken at random).

    Args:
        alpha: learning rate. gamma: discount. q0: initial value of every Q(s, a).
        epsilon: probability of a uniformly random action.
    """

    def __init__(self, alpha: float = 0.9, gamma: float = 0.9, q0: float = 0.5, epsilon: float = 0.0) -> None:
        for name, value, lo, hi in (("alpha", alpha, 0, 1), ("gamma", gamma, 0, 1), ("epsilon", epsilon, 0, 1)):
            if not lo <= value <= hi:
                raise ValueError(f"{name} must be in [{lo}, {hi}], got {value!r}")
        self.alpha, self.gamma, self.q0, self.epsilon = float(alpha), float(gamma), float(q0), float(epsilon)

    def begin_trial(self, info: TrialInfo) -> None:
        self.rng = random.Random(info.seed)
        self.n_actions = info.n_actions
        self.q = [[self.q0] * info.n_actions for _ in range(info.n_observations)]

    def act(self, obs: int) -> int:
        if self.epsilon and self.rng.random() < self.epsilon:
            return self.rng.randrange(self.n_actions)
        row = self.q[obs]
        best = max(row)
        ties = [a for a, v in enumerate(row) if v == best]
        return ties[0] if len(ties) == 1 else ties[self.rng.randrange(len(ties))]

    def observe(self, t: Transition, demonstration: bool = False) -> None:
        target = t.reward if t.terminated else t.reward + self.gamma * max(self.q[t.next_obs])
        row = self.q[t.obs]
        row[t.action] += self.alpha * (target - row[t.action])
