"""A file agent: `icrl-bench evaluate examples/my_agent.py:GoRightThenDown`.

The smallest useful `Agent` subclass: it tries right until a wall stops it, then down, then right again.
"""

from icrl_bench.protocol.agent import Agent, TrialInfo


class GoRightThenDown(Agent):
    def begin_trial(self, info: TrialInfo) -> None:
        self.last = None
        self.direction = 2  # right

    def act(self, obs: int) -> int:
        if obs == self.last:  # bumped into a wall: switch between right and down
            self.direction = 1 if self.direction == 2 else 2
        self.last = obs
        return self.direction

    def observe(self, transition, demonstration=False):
        if transition.terminated or transition.truncated:
            self.last = None
