"""The agent interface: what any agent must implement to be scored by icrl-bench.

A trial is a sequence of episodes on hidden tasks. The runner
1. calls ``begin_trial(info)`` - a fresh start: forget everything from earlier trials;
2. shows the task's demonstrations, if any, through ``observe(transition, demonstration=True)``;
3. then, for every step of every episode, calls ``act(obs)`` and afterwards ``observe(transition)`` with the
   transition that actually happened (``obs, action, reward, next_obs, terminated, truncated``).
Memory across the episodes of a trial is the agent's business. An agent is never shown the map, the task id or
the env's ``info``; the task may change inside a trial without a signal (non-stationary suites).

An agent must be deterministic given ``info.seed`` (use it for all randomness): the runner's results then do
not depend on the number of worker processes.

Batched agents (neural ones, say) implement ``begin_trials``, ``act_batch`` and ``observe_batch`` to act on many
trials at once; the runner uses them when present. `BatchedFromSingle` is the reference of their meaning.
"""

from __future__ import annotations

import dataclasses
import sysconfig
import traceback
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

from icrl_bench.envs.task import TaskSpec, Transition


@dataclasses.dataclass(frozen=True)
class TrialInfo:
    """What an agent is told when a trial begins (never the map)."""

    n_actions: int  # actions are 0..n_actions-1: 0 left, 1 down, 2 right, 3 up
    n_observations: int  # observations are tile indices 0..n_observations-1
    n_episodes: int  # episodes in this trial
    max_steps: int  # step limit of an episode
    seed: int  # for the agent's own randomness

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Agent:
    """Base class for single-trial agents; subclasses override `act` and usually `begin_trial` and `observe`."""

    #: A privileged agent (an oracle) is shown the task through `reveal`; its results are a ceiling, not an entry.
    privileged: bool = False

    def begin_trial(self, info: TrialInfo) -> None:
        """A new trial starts: reset all memory."""

    def act(self, obs: int) -> int:
        """The action (0..3) to take in observation `obs`."""
        raise NotImplementedError

    def observe(self, transition: Transition, demonstration: bool = False) -> None:
        """A transition that happened (after `act`), or a demonstration shown before the first action."""

    def reveal(self, task: TaskSpec) -> None:
        """Privileged agents only: the current task (called at trial start and whenever it changes)."""


@runtime_checkable
class BatchedAgent(Protocol):
    """Acts in many trials at once. `trials` are indices into the list given to `begin_trials`."""

    def begin_trials(self, infos: Sequence[TrialInfo]) -> None: ...

    def act_batch(self, obs: Sequence[int], trials: Sequence[int]) -> Sequence[int]: ...

    def observe_batch(
        self, transitions: Sequence[Transition], trials: Sequence[int], demonstration: bool = False
    ) -> None: ...


def is_batched(agent: Any) -> bool:
    """Whether `agent` implements the batched interface."""
    return all(callable(getattr(agent, m, None)) for m in ("begin_trials", "act_batch", "observe_batch"))


class SingleAsBatched:
    """Presents a single-trial agent through the batched interface, one trial at a time."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.privileged = bool(getattr(agent, "privileged", False))

    def begin_trials(self, infos: Sequence[TrialInfo]) -> None:
        if len(infos) != 1:
            raise ValueError("a single-trial agent runs one trial at a time")
        self.agent.begin_trial(infos[0])

    def act_batch(self, obs: Sequence[int], trials: Sequence[int]) -> list[int]:
        return [self.agent.act(obs[0])]

    def observe_batch(self, transitions: Sequence[Transition], trials: Sequence[int], demonstration: bool = False) -> None:
        for t in transitions:  # several only for a demonstration (one trial, many steps)
            self.agent.observe(t, demonstration)

    def reveal(self, task: TaskSpec, trial: int) -> None:
        self.agent.reveal(task)


# Frames that are not the agent's own code: the standard library, installed packages, and this protocol package.
_NOT_THE_AGENT = tuple(
    str(Path(p)) for p in {*(sysconfig.get_paths()[k] for k in ("stdlib", "purelib", "platlib")), str(Path(__file__).parent)}
)


def raised_at(e: BaseException) -> str:
    """`` (at file:line in function)`` of the frame that raised, preferring the agent's own code over the standard
    library, installed packages and the protocol's callers (a numpy error is reported at the agent's line that
    called numpy); the runner and an isolated agent's child report it the same way."""
    frames = traceback.extract_tb(e.__traceback__)
    if not frames:
        return ""
    own = [f for f in frames if not f.filename.startswith(_NOT_THE_AGENT)]
    frame = (own or frames)[-1]
    return f" (at {frame.filename}:{frame.lineno} in {frame.name})"
