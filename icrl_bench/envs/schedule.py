"""`TaskSchedule`: which task each episode is played on - trials, periodic new tasks and non-stationary changes.

A *trial* is a sequence of episodes that an in-context learner may remember across. The schedule starts a
trial when asked (a seeded reset, ``options={"new_task": True}`` or an explicit task), after
``episodes_per_task`` episodes (RL^2-style training), and changes the task *inside* the trial, without a
signal, every ``change_every`` episodes (non-stationary).

Change kinds (``change_kind``):
    ``resample``: a fresh task from the source (the paper's non-stationary experiment);
    ``mutate``: flip ``n_mutations`` frozen/hole tiles;
    ``move_goal``: move every goal to another frozen tile;
    ``permute``: draw a new action permutation.
Every changed map stays valid: every start still reaches a goal at least the source's ``min_hops`` away; a map
that admits no valid change of the asked kind is resampled instead (see `change_task`). Demonstrations are
shown at the start of a trial only, never after a change.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator, Protocol

import numpy as np

from icrl_bench.envs.generator import RngLike, as_rng
from icrl_bench.envs.task import InvalidTaskError, TaskSpec, check_integer

CHANGE_KINDS = ("resample", "mutate", "move_goal", "permute")
_MAX_TRIES = 1000


class TaskSource(Protocol):
    """Anything that draws tasks: `MapGenerator`, `StitchingGenerator`, `FixedTask`."""

    @property
    def max_height(self) -> int: ...

    @property
    def max_width(self) -> int: ...

    def sample(self, rng: RngLike = None) -> TaskSpec: ...


@dataclasses.dataclass(frozen=True)
class FixedTask:
    """A source that always returns the same task."""

    task: TaskSpec

    @property
    def max_height(self) -> int:
        return self.task.nrow

    @property
    def max_width(self) -> int:
        return self.task.ncol

    def sample(self, rng: RngLike = None) -> TaskSpec:
        return self.task


def task_rng(seed: int) -> np.random.Generator:
    """The task-drawing stream for an env seed, independent of the dynamics stream that Gymnasium seeds."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(1,))))


def _changed(task: TaskSpec, kind: str, rng: np.random.Generator, n_mutations: int) -> TaskSpec:
    """One random candidate change of `task` (may be invalid: raises InvalidTaskError then)."""
    if kind == "permute":
        return task.replace(action_permutation=tuple(int(a) for a in rng.permutation(4)))
    flat = list("".join(task.rows))
    if kind == "mutate":
        cells = [i for i, t in enumerate(flat) if t in "FH"]
        for i in rng.choice(len(cells), size=min(n_mutations, len(cells)), replace=False):
            flat[cells[i]] = "H" if flat[cells[i]] == "F" else "F"
    elif kind == "move_goal":
        goals = [i for i, t in enumerate(flat) if t == "G"]
        frozen = [i for i, t in enumerate(flat) if t == "F"]
        if len(frozen) < len(goals):
            raise InvalidTaskError(f"cannot move the goals of {task}: not enough frozen tiles")
        for g in goals:
            flat[g] = "F"
        for i in rng.choice(len(frozen), size=len(goals), replace=False):
            flat[frozen[i]] = "G"
    else:
        raise ValueError(f"unknown change_kind {kind!r}; choose one of {CHANGE_KINDS}")
    return task.replace(rows=tuple("".join(flat[r * task.ncol : (r + 1) * task.ncol]) for r in range(task.nrow)))


def change_task(
    task: TaskSpec, kind: str, rng: np.random.Generator, source: TaskSource, n_mutations: int = 2
) -> TaskSpec:
    """A changed version of `task`, never equal to it, drawn uniformly among the valid changes of `kind`.

    Valid: the task validates, and (for map changes) every start's nearest goal is at least the source's
    ``min_hops`` away. Some small maps admit no valid change of a kind (about 12% of in-distribution maps have
    no other valid goal position, a few no valid pair of tiles to flip); after 1000 candidates such a map is
    changed by ``resample`` instead - the strongest change, and still unsignalled.
    """
    if kind not in CHANGE_KINDS:
        raise ValueError(f"unknown change_kind {kind!r}; choose one of {CHANGE_KINDS}")
    if kind != "resample":
        min_hops = getattr(source, "min_hops", 1)
        for _ in range(_MAX_TRIES):
            try:
                new = _changed(task, kind, rng, n_mutations)
            except InvalidTaskError:
                continue
            if new != task and (kind == "permute" or min(new.start_distances) >= min_hops):
                return new
    for _ in range(_MAX_TRIES):
        new = source.sample(rng)
        if new != task:
            return new
    raise InvalidTaskError(
        f"could not change task {task} by {kind!r}, nor by drawing a different task from {type(source).__name__} "
        "(a fixed task cannot be resampled): choose another change_kind"
    )


@dataclasses.dataclass
class EpisodeStart:
    """What the schedule decided for a new episode."""

    task: TaskSpec
    trial_episode: int  # index of this episode within its trial, from 0
    new_trial: bool
    task_changed: bool  # the task differs from the previous episode's (always True on a new trial)

    def info(self) -> dict[str, Any]:
        """The reset `info` of the environment (never the map itself)."""
        out: dict[str, Any] = {
            "task_id": self.task.task_id,
            "trial_episode": self.trial_episode,
            "task_changed": self.task_changed,
        }
        if self.new_trial and self.task.demonstrations:
            out["demonstrations"] = tuple(self.task.rollout(d) for d in self.task.demonstrations)
        return out


class _Samples:
    """A picklable endless iterator of `source.sample(rng)` (for sources without a `stream`)."""

    def __init__(self, source: TaskSource, rng: np.random.Generator) -> None:
        self.source, self.rng = source, rng

    def __iter__(self) -> _Samples:
        return self

    def __next__(self) -> TaskSpec:
        return self.source.sample(self.rng)


class _Excluding:
    """A picklable iterator of another stream's tasks whose map is not banned (order kept)."""

    def __init__(self, inner: Iterator[TaskSpec], banned: frozenset[str]) -> None:
        self.inner, self.banned = inner, banned

    def __iter__(self) -> _Excluding:
        return self

    def __next__(self) -> TaskSpec:
        while True:
            task = next(self.inner)
            if task.map_id not in self.banned:
                return task

    def next_ref(self) -> tuple[Any, int]:
        """The inner stream's `next_ref`, skipping banned maps (only for an inner stream that has one)."""
        while True:
            block, j = self.inner.next_ref()
            if block.map_id(j) not in self.banned:
                return block, j


def _ref_drawer(stream: Iterator[TaskSpec]) -> Callable[[], tuple[Any, int]] | None:
    """`stream.next_ref` where the stream can serve tasks as (generator.TaskBlock, index); None otherwise."""
    if isinstance(stream, _Excluding):
        return stream.next_ref if hasattr(stream.inner, "next_ref") else None
    return getattr(stream, "next_ref", None)


@dataclasses.dataclass(frozen=True)
class ExcludingSource:
    """A source's tasks without the maps in `banned` (by `map_id`), in the source's order otherwise: how a training
    env is kept disjoint from the evaluation suites' maps (``make_source(..., exclude_maps=...)``)."""

    source: Any
    banned: frozenset[str]

    @property
    def max_height(self) -> int:
        return self.source.max_height

    @property
    def max_width(self) -> int:
        return self.source.max_width

    def stream(self, rng: RngLike = None) -> _Excluding:
        inner = self.source.stream(rng) if hasattr(self.source, "stream") else _Samples(self.source, as_rng(rng))
        return _Excluding(inner, self.banned)

    def sample(self, rng: RngLike = None) -> TaskSpec:
        return next(self.stream(rng))


class TaskSchedule:
    """Draws and changes the task of one environment (one per sub-env in the vector env).

    The caller counts episodes within the trial (an int in the single env, an array in the vector env) and
    asks `events` what happens at the next one; both envs thus follow one rule.
    """

    def __init__(
        self,
        source: TaskSource,
        episodes_per_task: int | None = None,
        change_every: int | None = None,
        change_kind: str | None = None,
        n_mutations: int | None = None,
    ) -> None:
        """`change_kind` (default ``resample``) needs `change_every`; `n_mutations` (default 2) needs
        ``change_kind="mutate"`` and is at most the frozen and hole tiles of the source's largest map."""
        self.episodes_per_task, self.change_every = (
            None if value is None else check_integer(name, value)
            for name, value in (("episodes_per_task", episodes_per_task), ("change_every", change_every))
        )
        if change_kind is not None:
            if not isinstance(change_kind, str) or change_kind not in CHANGE_KINDS:
                raise ValueError(f"unknown change_kind {change_kind!r}; choose one of {CHANGE_KINDS}")
            if change_every is None:
                raise ValueError(
                    f"change_kind={change_kind!r} needs change_every: the task changes inside a trial only every "
                    "change_every episodes; pass change_every too, or drop change_kind"
                )
        if n_mutations is not None:
            if change_kind != "mutate":
                raise ValueError(
                    f"n_mutations={n_mutations!r} needs change_kind='mutate' (and change_every): it is the number of "
                    "tiles a mutation flips"
                )
            h, w = source.max_height, source.max_width
            n_mutations = check_integer(
                "n_mutations",
                n_mutations,
                high=max(h * w - 2, 0),
                why=f"a map of at most {h}x{w} tiles has at most {max(h * w - 2, 0)} frozen or hole tiles to flip "
                "(every map has a start and a goal)",
            )
        self.source = source
        self.change_kind = change_kind or "resample"
        self.n_mutations = n_mutations or 2
        self.rng: np.random.Generator | None = None
        self._task: TaskSpec | None = None
        self._ref: tuple[Any, int] | None = None  # a drawn task not built yet: (generator.TaskBlock, index)
        self._draws: Iterator[TaskSpec] | None = None
        self._drawer: Any = None  # _ref_drawer of `_draws` (False: it has none); None: not looked up yet

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_drawer": None}  # a bound method: looked up again after unpickling

    @property
    def task(self) -> TaskSpec | None:
        """The current task (built on first use when it was set by `draw_ref`)."""
        if self._ref is not None:
            block, j = self._ref
            self._task, self._ref = block.task(j), None
        return self._task

    @task.setter
    def task(self, task: TaskSpec | None) -> None:
        self._task, self._ref = task, None

    def seed(self, seed: int) -> None:
        """Restart the task stream from `seed` (the env's reset seed)."""
        self.rng = task_rng(seed)
        self._draws = self._drawer = None

    def draws(self) -> Iterator[TaskSpec]:
        """The task stream of this seed (made on first use; `generator.prefill` fills many at once)."""
        # One persistent stream per seed: a MapGenerator keeps its block of candidates between draws.
        if self._draws is None:
            assert self.rng is not None
            rng = self.rng
            stream = getattr(self.source, "stream", None)
            self._draws = stream(rng) if stream is not None else _Samples(self.source, rng)
        return self._draws

    def _draw(self) -> TaskSpec:
        return next(self.draws())

    def events(self, next_episode: Any) -> tuple[Any, Any]:
        """(starts a new trial, changes the task) for trial-episode index `next_episode` (int or int array)."""
        ep = np.asarray(next_episode)
        new_trial = ep >= self.episodes_per_task if self.episodes_per_task is not None else np.zeros_like(ep, bool)
        change = ~new_trial & (ep % self.change_every == 0) if self.change_every is not None else np.zeros_like(ep, bool)
        return new_trial, change

    def new_trial(self, task: TaskSpec | None = None) -> TaskSpec:
        """Set the task of a new trial: `task` if given, else the next one of the stream."""
        assert self.rng is not None, "seed() the schedule before the first trial"
        self.task = task if task is not None else self._draw()
        return self.task

    def draw_ref(self) -> tuple[Any, int] | None:
        """Start a new trial on the stream's next task, returned as ``(block, index)`` (a `generator.TaskBlock`
        row) without building its `TaskSpec` (built only if `task` is read): the vector env's path. None, and
        nothing drawn, where the stream serves only TaskSpecs: call `new_trial` then."""
        assert self.rng is not None, "seed() the schedule before the first trial"
        if self._drawer is None:
            self._drawer = _ref_drawer(self.draws()) or False
        if self._drawer is False:
            return None
        self._ref = ref = self._drawer()
        self._task = None
        return ref

    def change(self) -> TaskSpec:
        """Change the task inside the trial (non-stationary)."""
        assert self.rng is not None and self.task is not None
        self.task = change_task(self.task, self.change_kind, self.rng, self.source, self.n_mutations)
        return self.task

    def next_episode(self, trial_episode: int, task: TaskSpec | None = None, new_task: bool = False) -> EpisodeStart:
        """Begin the episode after `trial_episode` (-1 before any): a new trial if asked or due, else the next one."""
        new_trial, change = self.events(trial_episode + 1)
        if task is not None or new_task or self.task is None or new_trial:
            return EpisodeStart(self.new_trial(task), 0, new_trial=True, task_changed=True)
        if change:
            self.change()
        return EpisodeStart(self.task, trial_episode + 1, new_trial=False, task_changed=bool(change))
