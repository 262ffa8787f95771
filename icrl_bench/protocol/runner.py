"""`run_trials`: play an agent through trials of a suite and record every episode.

One loop serves every agent: single-trial agents run through `SingleAsBatched`, one trial at a time;
batched agents get many trials per call. Each trial has its own environment seed and agent seed, so a
trial's record depends only on (agent, suite, trial index, evaluation seed) - never on batching or workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
import random
import signal
import threading
import time
from functools import lru_cache

import numpy as np
from typing import Any, Callable, Iterator, Sequence

from icrl_bench.envs.dynamics import _success_values
from icrl_bench.envs.frozen_lake import ICRLFrozenLakeEnv
from icrl_bench.envs.task import TaskSpec, Transition
from icrl_bench.protocol.agent import SingleAsBatched, TrialInfo, is_batched
from icrl_bench.protocol.suites import Suite

FORCED_EXPLORATION = ("none", "paper")


class AgentError(RuntimeError):
    """The agent failed (raised, returned an invalid action, or was too slow); the message names where."""


@dataclasses.dataclass(frozen=True)
class ProtocolOptions:
    """How trials are played.

    Args:
        forced_exploration: ``none`` (default: the agent acts on its own from the first step) or ``paper``
            (Rentschler & Roberts: the agent's action is used with probability 0, 0, 0.1, 0.1, ..., 0.9, 0.9 in
            episodes 1-20, then 1.0; otherwise a uniformly random action; restarting after a non-stationary
            change). Stitching suites are always played greedily, as in the paper.
        step_timeout: seconds an `act`/`act_batch` call may take before the run stops with an error.
        batch_size: trials per call for batched agents.
        on_invalid_action: ``error`` (default: stop with a message naming the trial) or ``random`` (replace it
            by a uniformly random action and count it in the ``invalid_actions`` metric; for text agents).
    """

    forced_exploration: str = "none"
    step_timeout: float | None = 10.0
    batch_size: int = 100
    on_invalid_action: str = "error"

    def __post_init__(self) -> None:
        if self.forced_exploration not in FORCED_EXPLORATION:
            raise ValueError(f"forced_exploration must be one of {FORCED_EXPLORATION}, got {self.forced_exploration!r}")
        if self.step_timeout is not None and self.step_timeout <= 0:
            raise ValueError(f"step_timeout must be positive or None, got {self.step_timeout!r}")
        if self.on_invalid_action not in ("error", "random"):
            raise ValueError(f"on_invalid_action must be 'error' or 'random', got {self.on_invalid_action!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class EpisodeRecord:
    """One episode: enough to recompute every metric and to check it is possible."""

    success: int  # 1 if a goal was reached
    steps: int
    start: int  # start tile
    shortest: int  # shortest start-to-goal moves on that episode's map
    optimal: float  # success probability of the optimal (map-knowing) policy from that start
    truncated: bool
    forced_random: int = 0  # actions replaced by forced exploration
    invalid_actions: int = 0  # invalid actions replaced by random ones (on_invalid_action="random")


@dataclasses.dataclass
class TrialRecord:
    """One trial: its seeds, task ids and per-episode records (what results.json stores)."""

    suite: str
    trial: int
    env_seed: int
    agent_seed: int
    task_ids: list[str]
    episodes: list[EpisodeRecord]
    wall_time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = dict(vars(self))  # flat fields; faster than dataclasses.asdict's deep copy
        out["task_ids"] = list(self.task_ids)
        out["episodes"] = [dict(vars(e)) for e in self.episodes]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        data = dict(data)
        data["episodes"] = [EpisodeRecord(**e) for e in data["episodes"]]
        return cls(**data)


def paper_exploration_probability(episode_since_change: int) -> float:
    """Probability that the agent's own action is used (the paper's schedule)."""
    return 1.0 if episode_since_change >= 20 else (episode_since_change // 2) / 10


@lru_cache(maxsize=4096)
def _optimal_from(task: TaskSpec) -> tuple[float, ...]:
    if task.success_rate == 1.0:
        return tuple(0.0 if d is None else 1.0 for d in task.goal_distances)
    return tuple(float(v) for v in _success_values(task, task.max_steps, optimal=True))


class _Timeout(BaseException):
    """Raised by SIGALRM inside the agent; a BaseException so that `except Exception` in agent code cannot eat it
    (and the timer repeats, so a bare `except:` retry loop is interrupted again)."""


def _raise_timeout(signum: int, frame: Any) -> None:
    raise _Timeout


@contextlib.contextmanager
def _alarm_handler(enabled: bool) -> Iterator[bool]:
    """Install the SIGALRM handler once for a whole run (main thread on Unix); yields whether alarms work."""
    usable = enabled and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield False
        return
    previous = signal.signal(signal.SIGALRM, _raise_timeout)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Caller:
    """Calls into the agent under the per-step time limit, turning any failure into an `AgentError`."""

    def __init__(self, limit: float | None, alarms: bool) -> None:
        self.limit, self.alarms = limit, alarms

    def __call__(self, where: Callable[[], str], fn: Any, *args: Any) -> Any:
        limit = self.limit
        start = time.perf_counter()
        try:
            if self.alarms:
                signal.setitimer(signal.ITIMER_REAL, limit, max(limit / 10, 0.05))  # repeats until disarmed
            try:
                result = fn(*args)
            finally:
                if self.alarms:
                    signal.setitimer(signal.ITIMER_REAL, 0)
        except _Timeout:
            raise AgentError(f"{where()}: the agent took longer than the per-step limit of {limit} s") from None
        except (AgentError, KeyboardInterrupt):
            raise
        except SystemExit as e:
            raise AgentError(f"{where()}: the agent called exit({e.code})") from None
        except Exception as e:
            raise AgentError(f"{where()}: the agent raised {type(e).__name__}: {e}") from e
        if limit is not None and time.perf_counter() - start > limit:  # where alarms cannot interrupt
            raise AgentError(f"{where()}: the agent took longer than the per-step limit of {limit} s")
        return result


def _check_action(value: Any, trial: _Trial, replace: bool) -> int:
    try:
        a = -1 if isinstance(value, (bool, np.bool_)) else operator.index(value)
    except TypeError:
        a = -1
    if 0 <= a < 4:
        return a
    if not replace:
        raise AgentError(f"{trial.where()}: the agent returned the invalid action {value!r}; actions are integers 0..3")
    trial.invalid += 1
    return trial.rng.randrange(4)


class _Trial:
    """State of one trial while it is played."""

    def __init__(self, suite: Suite, trial: int, seed: int) -> None:
        self.suite, self.trial = suite, trial
        self.tasks = suite.tasks[trial] if trial < suite.n_trials else suite.trial_tasks(trial)
        self.env_seed, self.agent_seed = suite.trial_seeds(seed, trial)
        self.env = ICRLFrozenLakeEnv(**suite.env_kwargs)
        self.obs, _ = self.env.reset(seed=self.env_seed, options={"task": self.tasks[0]})
        self.task = self.tasks[0]
        self.episode_start = self.obs
        self.rng = random.Random(self.agent_seed ^ 0x5EED)  # forced exploration, never the agent's stream
        self.episode = 0
        self.since_change = 0
        self.steps = 0
        self.forced = 0
        self.invalid = 0
        self.episodes: list[EpisodeRecord] = []
        self.wall_time = 0.0  # this trial's share of the time its batch took (batched trials overlap)

    def info(self) -> TrialInfo:
        return TrialInfo(4, int(self.env.observation_space.n), self.suite.n_episodes, self.task.max_steps, self.agent_seed)

    def where(self) -> str:
        return f"suite {self.suite.name!r}, trial {self.trial}, episode {self.episode}, step {self.steps}"

    def end_episode(self, success: bool, truncated: bool) -> bool:
        """Record the finished episode and start the next; False when the trial is over."""
        start = self.episode_start
        self.episodes.append(
            EpisodeRecord(
                success=int(success),
                steps=self.steps,
                start=start,
                shortest=int(self.task.goal_distances[start]),  # type: ignore[arg-type]
                optimal=_optimal_from(self.task)[start],
                truncated=truncated,
                forced_random=self.forced,
                invalid_actions=self.invalid,
            )
        )
        self.episode += 1
        self.since_change += 1
        self.steps = self.forced = self.invalid = 0
        if self.episode == self.suite.n_episodes:
            return False
        if self.suite.change_after is not None and self.episode == self.suite.change_after:
            self.task = self.tasks[1]
            self.since_change = 0
            self.obs, _ = self.env.reset(options={"task": self.task})
        else:
            self.obs, _ = self.env.reset()
        self.episode_start = self.obs
        return True

    def record(self) -> TrialRecord:
        return TrialRecord(
            suite=self.suite.name,
            trial=self.trial,
            env_seed=self.env_seed,
            agent_seed=self.agent_seed,
            task_ids=[t.task_id for t in self.tasks],
            episodes=self.episodes,
            wall_time=self.wall_time,
        )


def run_trials(
    agent: Any,
    suite: Suite,
    trials: Sequence[int],
    seed: int = 0,
    options: ProtocolOptions | None = None,
    privileged: bool | None = None,
) -> Iterator[TrialRecord]:
    """Play `agent` on the given trial indices of `suite`; yields each trial's record as it finishes.

    `privileged`: whether the agent may be shown the task through `reveal` (default: its own ``privileged``
    attribute). `evaluate` passes what the agent's specification declares, so that it is recorded in results.
    """
    options = options or ProtocolOptions()
    batched = agent if is_batched(agent) else SingleAsBatched(agent)
    size = options.batch_size if batched is agent else 1
    forced = options.forced_exploration == "paper" and not suite.name.startswith("stitching")
    reveal = bool(getattr(agent, "privileged", False)) if privileged is None else privileged
    with _alarm_handler(options.step_timeout is not None) as alarms:
        call = _Caller(options.step_timeout, alarms)
        for i in range(0, len(trials), size):
            yield from _run_batch(batched, suite, list(trials[i : i + size]), seed, call, forced, options, reveal)


def _run_batch(
    agent: Any,
    suite: Suite,
    trials: list[int],
    seed: int,
    call: _Caller,
    forced: bool,
    options: ProtocolOptions,
    privileged: bool,
) -> Iterator[TrialRecord]:
    clock = time.perf_counter()
    states = [_Trial(suite, k, seed) for k in trials]

    def where_all() -> str:
        return f"suite {suite.name!r}, trials {', '.join(str(s.trial) for s in states)}, begin_trials"

    call(where_all, agent.begin_trials, [s.info() for s in states])
    for j, s in enumerate(states):
        if privileged:
            call(lambda: f"{s.where()}, reveal", agent.reveal, s.task, j)
        for demo in s.task.demonstrations:
            call(lambda: f"{s.where()}, demonstration", agent.observe_batch, s.task.rollout(demo), (j,) * len(demo.actions), True)
    active = tuple(range(len(states)))  # a tuple: an agent cannot reorder the runner's bookkeeping
    while active:

        def where() -> str:
            return "; ".join(states[j].where() for j in active[:3]) + (" ..." if len(active) > 3 else "")

        actions = call(where, agent.act_batch, [states[j].obs for j in active], active)
        try:
            n_actions = len(actions)
        except TypeError:
            raise AgentError(f"{where()}: act_batch returned {actions!r}; expected a sequence of {len(active)} actions") from None
        if n_actions != len(active):
            raise AgentError(f"{where()}: act_batch returned {n_actions} actions for {len(active)} trials")
        transitions, still = [], []
        for j, value in zip(active, actions):
            s = states[j]
            a = _check_action(value, s, options.on_invalid_action == "random")
            if forced and s.rng.random() >= paper_exploration_probability(s.since_change):
                a = s.rng.randrange(4)
                s.forced += 1
            obs, reward, terminated, truncated, _ = s.env.step(a)
            transitions.append(Transition(s.obs, a, reward, obs, terminated, truncated))
            s.obs = obs
            s.steps += 1
        call(where, agent.observe_batch, transitions, active)
        now = time.perf_counter()
        for j in active:  # share this step's time among the trials that took part in it
            states[j].wall_time += (now - clock) / len(active)
        clock = now
        finished = []
        for j, t in zip(active, transitions):
            s = states[j]
            if not (t.terminated or t.truncated):
                still.append(j)
                continue
            previous_task = s.task
            if s.end_episode(t.reward > 0, t.truncated and not t.terminated):
                still.append(j)
                if privileged and s.task is not previous_task:
                    call(lambda: f"{s.where()}, reveal", agent.reveal, s.task, j)
            else:
                finished.append(s)
        yield from (s.record() for s in finished)
        active = tuple(still)
