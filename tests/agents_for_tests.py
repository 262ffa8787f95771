"""Agents that misbehave on purpose, for the protocol tests (loaded as file agents)."""

import os
import time

from icrl_bench.baselines import ExplorerAgent
from icrl_bench.protocol.agent import Agent


class Raising(Agent):
    def act(self, obs):
        raise ZeroDivisionError("boom")


class Invalid(Agent):
    def act(self, obs):
        return 7


class Slow(Agent):
    def act(self, obs):
        time.sleep(5)
        return 0


class InterruptedExplorer(ExplorerAgent):
    """An explorer that hits Ctrl-C when it starts its trial number $ICRL_TEST_INTERRUPT_AT."""

    def begin_trial(self, info):
        self.started = getattr(self, "started", 0) + 1
        at = os.environ.get("ICRL_TEST_INTERRUPT_AT")
        if at is not None and self.started == int(at):
            raise KeyboardInterrupt
        super().begin_trial(info)


class BatchedExplorer:
    """The explorer behind the batched interface: must give exactly the single explorer's results."""

    def begin_trials(self, infos):
        self.agents = [ExplorerAgent() for _ in infos]
        for agent, info in zip(self.agents, infos):
            agent.begin_trial(info)

    def act_batch(self, obs, trials):
        return [self.agents[t].act(o) for o, t in zip(obs, trials)]

    def observe_batch(self, transitions, trials, demonstration=False):
        for tr, t in zip(transitions, trials):
            self.agents[t].observe(tr, demonstration)


def make_explorer():
    return ExplorerAgent()


EXPLORER_INSTANCE = ExplorerAgent()
