"""Named, versioned evaluation suites: fixed task lists drawn from a reserved seed space, each with a content hash.

A suite's tasks do not depend on the evaluation seed (``--seed`` only changes starts, slips and the agent's own
randomness), so two results on the same suite version and hash were scored on exactly the same maps.
Training data must come from other seeds; `evaluation_map_ids` lists every evaluation map so that training
maps can be proven disjoint from them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import cached_property
from typing import Any

import numpy as np

from icrl_bench.envs.frozen_lake import make_source
from icrl_bench.envs.registration import source_kwargs
from icrl_bench.envs.schedule import TaskSource, change_task
from icrl_bench.envs.task import TaskSpec

# Entropy of the evaluation seed space. Nothing else in the project draws tasks from it.
EVAL_ENTROPY = 0x1C_B1_E7A1
# Entropy of the training seed space (hyper-parameter sweeps, training data): never the evaluation one.
TRAIN_ENTROPY = 0x7A_A1_2025
DEFAULT_TRIALS = 100
# Evaluation seeds from here on are secret (verification): their trials' seeds come from SHA-256 (`trial_seeds`).
SECRET_SEED_FLOOR = 2**64


def _stable_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


@dataclasses.dataclass(frozen=True)
class Suite:
    """A fixed list of trials: for each, the task(s) it is played on, in order.

    Args:
        name, version: identity; the version changes whenever the task list would.
        env_id: the registered environment whose distribution the tasks come from.
        n_episodes: episodes per trial.
        change_after: for non-stationary suites, the task is replaced after this many episodes (no signal).
        n_trials: trials in the suite (``--trials`` runs the first k).
        description: one line for `icrl-bench suites`.
        entropy: the seed space the tasks are drawn from (`EVAL_ENTROPY` for the evaluation suites).
        greedy_only: always played without forced exploration, whatever the protocol options (the stitching
            suites, as in the paper). Not part of the hash: it changes how a suite is played, not its tasks.
    """

    name: str
    version: int
    env_id: str
    n_episodes: int
    description: str
    change_after: int | None = None
    n_trials: int = DEFAULT_TRIALS
    entropy: int = EVAL_ENTROPY
    greedy_only: bool = False

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `env_id` (its task source), without the schedule ones."""
        return source_kwargs(self.env_id)

    def source(self) -> TaskSource:
        """The task source of the suite's env id."""
        return make_source(**self.env_kwargs)

    def trial_tasks(self, trial: int) -> tuple[TaskSpec, ...]:
        """The task(s) of trial `trial`: one, or two (before and after the change) for non-stationary suites."""
        key = (_stable_key(self.name), trial)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.entropy, spawn_key=key)))
        source = self.source()
        first = source.sample(rng)
        if self.change_after is None:
            return (first,)
        return (first, change_task(first, "resample", rng, source))

    def task_index(self, episode: int) -> int:
        """Which of a trial's tasks is played in episode `episode` (0-based): 0, or 1 from `change_after` on."""
        return 1 if self.change_after is not None and episode >= self.change_after else 0

    def tasks_of(self, trial: int) -> tuple[TaskSpec, ...]:
        """Trial `trial`'s tasks: from the cached list, or drawn for a trial beyond it (training, sweeps)."""
        return self.tasks[trial] if trial < self.n_trials else self.trial_tasks(trial)

    def task_for(self, trial: int, episode: int) -> TaskSpec:
        """The task played in episode `episode` (0-based) of trial `trial`."""
        return self.tasks_of(trial)[self.task_index(episode)]

    @cached_property
    def tasks(self) -> tuple[tuple[TaskSpec, ...], ...]:
        """Every trial's tasks (cached)."""
        return tuple(self.trial_tasks(k) for k in range(self.n_trials))

    @cached_property
    def hash(self) -> str:
        """Content hash over the suite's definition and its exact task list (16 hex digits)."""
        payload = {
            "name": self.name,
            "entropy": self.entropy,
            "version": self.version,
            "n_episodes": self.n_episodes,
            "change_after": self.change_after,
            "tasks": [[t.task_id for t in trial] for trial in self.tasks],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def trial_seeds(self, seed: int, trial: int) -> tuple[int, int]:
        """(environment seed, agent seed) of a trial under evaluation seed `seed`.

        Public evaluation seeds (below 2**64) give 32-bit seeds through numpy's SeedSequence. A secret seed
        (leaderboard verification: 2**64 or more, 128 bits of secret) gives seeds through SHA-256, so that neither
        the agent seed an agent is shown nor anything it observes lets it search for the rest: the environment
        seed has 128 bits (its starts and slips cannot be predicted) and is independent of the agent seed.
        """
        if seed >= SECRET_SEED_FLOOR:
            digest = hashlib.sha256(f"icrl-bench trial seeds:{seed}:{self.name}:{trial}".encode()).digest()
            return int.from_bytes(digest[:16], "little"), int.from_bytes(digest[16:20], "little")
        state = np.random.SeedSequence([seed, _stable_key(self.name), trial]).generate_state(2)
        return int(state[0]), int(state[1])

    def describe(self) -> dict[str, Any]:
        """Identity of the suite as recorded in results."""
        return {"name": self.name, "version": self.version, "hash": self.hash, "n_episodes": self.n_episodes}


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite("id", 1, "ICRLFrozenLake-v0", 30, "paper in-distribution maps (3-5 x 3-5)"),
        Suite("ood-large", 1, "ICRLFrozenLakeLarge-v0", 30, "paper out-of-distribution maps (6-7 x 6-7)"),
        Suite("ood-xl", 1, "ICRLFrozenLakeXL-v0", 30, "larger maps (8-10 x 8-10, 200-step limit)"),
        Suite("ood-dense", 1, "ICRLFrozenLakeDense-v0", 30, "more holes (p_hole 0.35)"),
        Suite("ood-slippery", 1, "ICRLFrozenLakeSlippery-v0", 30, "slippery (success_rate 1/3)"),
        Suite("ood-permuted", 1, "ICRLFrozenLakePermuted-v0", 30, "a random action permutation per task"),
        Suite("nonstationary", 1, "ICRLFrozenLake-v0", 60, "map replaced by a fresh one after 30 episodes", 30),
        Suite("stitching-paper", 1, "ICRLFrozenLakeStitchingPaper-v0", 5, "the paper's stitching task, 5 episodes",
              greedy_only=True),
        Suite("stitching", 1, "ICRLFrozenLakeStitching-v0", 5, "generated stitching tasks, 5 episodes",
              greedy_only=True),
    )
}
DEFAULT_SUITES = tuple(SUITES)


def training_suite(name: str, n_trials: int = DEFAULT_TRIALS) -> Suite:
    """Suite `name` with tasks from the training seed space (for sweeps; disjointness is checked by map id)."""
    suite = get_suite(name)
    return dataclasses.replace(suite, name=f"train-{name}", n_trials=n_trials, entropy=TRAIN_ENTROPY)


class UnknownSuiteError(KeyError):
    """A suite name that is not one of `SUITES`; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else ""


def get_suite(name: str) -> Suite:
    """The suite called `name`, or an error listing the known ones."""
    if name not in SUITES:
        raise UnknownSuiteError(f"unknown suite {name!r}; known suites: {', '.join(SUITES)}")
    return SUITES[name]


def evaluation_map_ids() -> frozenset[str]:
    """The `map_id` of every map of every evaluation suite (training maps must avoid all of them)."""
    return frozenset(t.map_id for suite in SUITES.values() for trial in suite.tasks for t in trial)
