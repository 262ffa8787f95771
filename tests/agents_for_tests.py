"""Agents that misbehave on purpose, for the protocol tests (loaded as file agents)."""

import os
import signal
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
    """An explorer during which the user hits Ctrl-C (a real SIGINT) when it starts its trial number
    $ICRL_TEST_INTERRUPT_AT."""

    def begin_trial(self, info):
        self.started = getattr(self, "started", 0) + 1
        at = os.environ.get("ICRL_TEST_INTERRUPT_AT")
        if at is not None and self.started == int(at):
            # raise(3): the signal goes to this thread and its handler runs before raise_signal returns (os.kill
            # to the process could land on another thread, the handler then running only later - a flaky test).
            signal.raise_signal(signal.SIGINT)
            time.sleep(1)  # not reached when the handler raises, as the user's Ctrl-C does
        super().begin_trial(info)


class Interrupting(Agent):
    """Raises KeyboardInterrupt itself: an agent error, not the user's Ctrl-C."""

    def act(self, obs):
        raise KeyboardInterrupt


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


class BusyLoop(Agent):
    def act(self, obs):
        while True:
            pass


class RetryingHang(Agent):
    """An API client that retries forever, swallowing every Exception."""

    def act(self, obs):
        while True:
            try:
                time.sleep(1000)
            except Exception:
                continue


class Exiting(Agent):
    def act(self, obs):
        raise SystemExit(3)


class NoneBatch(BatchedExplorer):
    def act_batch(self, obs, trials):
        return None


class SneakyPrivileged(ExplorerAgent):
    """Claims to be privileged on the instance only: the spec says nothing, so it must never be shown the map."""

    def __init__(self):
        self.privileged = True
        self.revealed = False

    def reveal(self, task):
        raise AssertionError("a non-declared agent was shown the map")


class SlowExplorer(ExplorerAgent):
    """The explorer, 20 ms slower per trial: long enough to be killed in the middle of a run."""

    def begin_trial(self, info):
        time.sleep(0.02)
        super().begin_trial(info)


class HangingConstructor(Agent):
    """Never finishes being built, and swallows whatever is raised to stop it."""

    def __init__(self):
        while True:
            try:
                time.sleep(1000)
            except BaseException:  # noqa: BLE001 - the point: it cannot be interrupted from inside
                continue
