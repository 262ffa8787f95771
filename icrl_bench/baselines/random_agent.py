"""`RandomAgent`: uniformly random actions - the floor every in-context learner must clear."""

from __future__ import annotations

import random

from icrl_bench.protocol.agent import Agent, TrialInfo


class RandomAgent(Agent):
    """Uniformly random actions from the trial seed."""

    def begin_trial(self, info: TrialInfo) -> None:
        self.rng = random.Random(info.seed)
        self.n_actions = info.n_actions

    def act(self, obs: int) -> int:
        return self.rng.randrange(self.n_actions)
