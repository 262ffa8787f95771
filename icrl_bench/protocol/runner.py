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
import traceback
from functools import lru_cache

import numpy as np
from typing import Any, Callable, Iterator, Sequence

from icrl_bench.envs.dynamics import _success_values
from icrl_bench.envs.frozen_lake import ICRLFrozenLakeEnv
from icrl_bench.envs.task import TaskSpec, Transition
from icrl_bench.protocol.agent import SingleAsBatched, TrialInfo, is_batched, raised_at
from icrl_bench.protocol.isolation import AgentProcessError
from icrl_bench.protocol.records import EpisodeRecord, TrialRecord  # re-exported: `from ...runner import TrialRecord`
from icrl_bench.protocol.suites import Suite

FORCED_EXPLORATION = ("none", "paper")
MAX_STEP_TIMEOUT = 86_400.0


class SettingError(ValueError):
    """A protocol or evaluation setting that is out of range (a user's input); the message says the allowed values."""


class AgentError(RuntimeError):
    """The agent failed (raised, returned an invalid action, was too slow, or its process died); the message names
    where. `details`: the agent's full traceback where there is one (``icrl-bench evaluate --debug`` prints it)."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details

    def __reduce__(self) -> tuple:  # keeps `details` across worker processes
        return (type(self), (str(self), self.details))


@dataclasses.dataclass(frozen=True)
class ProtocolOptions:
    """How trials are played.

    Args:
        forced_exploration: ``none`` (default: the agent acts on its own from the first step) or ``paper``
            (Rentschler & Roberts: the agent's action is used with probability 0, 0, 0.1, 0.1, ..., 0.9, 0.9 in
            episodes 1-20, then 1.0; otherwise a uniformly random action; restarting after a non-stationary
            change). Greedy-only suites (`Suite.greedy_only`: the stitching ones) are always played greedily, as
            in the paper.
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
            raise SettingError(f"forced_exploration must be one of {FORCED_EXPLORATION}, got {self.forced_exploration!r}")
        if self.step_timeout is not None and not (0 < self.step_timeout <= MAX_STEP_TIMEOUT):
            raise SettingError(f"step_timeout must be positive seconds up to {MAX_STEP_TIMEOUT:g} (a day), or None for no "
                             f"limit; got {self.step_timeout!r}")  # fmt: skip
        if self.on_invalid_action not in ("error", "random"):
            raise SettingError(f"on_invalid_action must be 'error' or 'random', got {self.on_invalid_action!r}")
        if self.batch_size < 1:
            raise SettingError(f"batch_size must be at least 1, got {self.batch_size!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def paper_exploration_probability(episode_since_change: int) -> float:
    """Probability that the agent's own action is used (the paper's schedule)."""
    return 1.0 if episode_since_change >= 20 else (episode_since_change // 2) / 10


def paper_exploration_schedule(suite: Suite) -> tuple[float, ...]:
    """Per episode of a trial, the probability that the agent's own action is used under the paper's forced
    exploration; the schedule restarts when a non-stationary suite changes the task. (The runner plays it and
    the leaderboard validator replays it: this is the one copy.)"""
    out: list[float] = []
    since_change = 0
    for k in range(suite.n_episodes):
        if k and suite.task_index(k) != suite.task_index(k - 1):
            since_change = 0
        out.append(paper_exploration_probability(since_change))
        since_change += 1
    return tuple(out)


def forced_exploration_rng(agent_seed: int) -> random.Random:
    """A trial's forced-exploration stream (each step: one draw, and a random action when forced), derived from
    its agent seed but never the agent's own stream; the leaderboard validator replays it."""
    return random.Random(agent_seed ^ 0x5EED)


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


class _UserInterrupt:
    """Whether the user pressed Ctrl-C (a real SIGINT) since the run began: a `KeyboardInterrupt` raised by the
    agent's own code is the agent's error, not the user's."""

    seen = False

    @classmethod
    def handler(cls, signum: int, frame: Any) -> None:
        cls.seen = True
        raise KeyboardInterrupt


@contextlib.contextmanager
def _signal_handlers(enabled: bool) -> Iterator[bool]:
    """Install the SIGALRM handler (if `enabled`) and the SIGINT recorder once for a whole run (main thread on
    Unix); yields whether alarms work. Elsewhere every KeyboardInterrupt counts as the user's."""
    main = threading.current_thread() is threading.main_thread()
    usable = enabled and hasattr(signal, "setitimer") and main
    previous_int = signal.getsignal(signal.SIGINT) if main else None
    if main and previous_int is signal.default_int_handler:
        _UserInterrupt.seen = False
        signal.signal(signal.SIGINT, _UserInterrupt.handler)
    else:
        _UserInterrupt.seen = True  # cannot tell them apart: treat interrupts as the user's
    previous = signal.signal(signal.SIGALRM, _raise_timeout) if usable else None
    try:
        yield usable
    finally:
        if usable:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        if main and previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)


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
        except AgentError:
            raise
        except KeyboardInterrupt as e:
            if _UserInterrupt.seen:
                raise
            raise AgentError(f"{where()}: the agent raised KeyboardInterrupt (no Ctrl-C was pressed){raised_at(e)}",
                             "".join(traceback.format_exception(e))) from None  # fmt: skip
        except SystemExit as e:
            raise AgentError(f"{where()}: the agent called exit({e.code}){raised_at(e)}",
                             "".join(traceback.format_exception(e))) from None  # fmt: skip
        except AgentProcessError as e:  # an isolated agent: the child's traceback comes with it
            raise AgentError(f"{where()}: {e}", e.traceback_text) from None
        except Exception as e:
            raise AgentError(f"{where()}: the agent raised {type(e).__name__}: {e}{raised_at(e)}",
                             "".join(traceback.format_exception(e))) from e  # fmt: skip
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
        self.tasks = suite.tasks_of(trial)
        self.env_seed, self.agent_seed = suite.trial_seeds(seed, trial)
        self.env = ICRLFrozenLakeEnv(**suite.env_kwargs)
        self.task = self.tasks[suite.task_index(0)]
        self.obs, _ = self.env.reset(seed=self.env_seed, options={"task": self.task})
        self.episode_start = self.obs
        self.rng = forced_exploration_rng(self.agent_seed)  # also draws the replacements of invalid actions
        self.episode = 0
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
        self.steps = self.forced = self.invalid = 0
        if self.episode == self.suite.n_episodes:
            return False
        task = self.tasks[self.suite.task_index(self.episode)]
        if task is not self.task:  # the non-stationary change
            self.task = task
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
    stop: Callable[[int], bool] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> Iterator[TrialRecord]:
    """Play `agent` on the given trial indices of `suite`; yields each trial's record as it finishes.

    `privileged`: whether the agent may be shown the task through `reveal` (default: its own ``privileged``
    attribute). `evaluate` passes what the agent's specification declares, so that it is recorded in results.
    `stop` (training rollouts only; evaluations never pass it): called with a trial's position in its batch
    after each of its steps; True ends the trial there, and its record holds the episodes it completed.
    `on_step` (progress reports only): called after every batch step with the number of trials that took it.
    """
    options = options or ProtocolOptions()
    batched = agent if is_batched(agent) else SingleAsBatched(agent)
    size = options.batch_size if batched is agent else 1
    # Under forced exploration, the probability per episode that the agent's own action is used (else None).
    paper = options.forced_exploration == "paper" and not suite.greedy_only
    forced = paper_exploration_schedule(suite) if paper else None
    reveal = bool(getattr(agent, "privileged", False)) if privileged is None else privileged
    with _signal_handlers(options.step_timeout is not None) as alarms:
        call = _Caller(options.step_timeout, alarms)
        for i in range(0, len(trials), size):
            yield from _run_batch(batched, suite, list(trials[i : i + size]), seed, call, forced, options, reveal, stop,
                                  on_step)  # fmt: skip


def _run_batch(
    agent: Any,
    suite: Suite,
    trials: list[int],
    seed: int,
    call: _Caller,
    forced: tuple[float, ...] | None,
    options: ProtocolOptions,
    privileged: bool,
    stop: Callable[[int], bool] | None = None,
    on_step: Callable[[int], None] | None = None,
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
            if forced is not None and s.rng.random() >= forced[s.episode]:
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
        if on_step is not None:
            on_step(len(active))
        finished = []
        for j, t in zip(active, transitions):
            s = states[j]
            if t.terminated or t.truncated:
                previous_task = s.task
                if not s.end_episode(t.reward > 0, t.truncated and not t.terminated):
                    finished.append(s)
                    continue
                if privileged and s.task is not previous_task:
                    call(lambda: f"{s.where()}, reveal", agent.reveal, s.task, j)
            if stop is not None and stop(j):
                finished.append(s)
                continue
            still.append(j)
        yield from (s.record() for s in finished)
        active = tuple(still)
