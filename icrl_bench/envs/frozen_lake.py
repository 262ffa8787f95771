"""`ICRLFrozenLakeEnv`: Frozen Lake on hidden, freshly drawn maps, for in-context reinforcement learning."""

from __future__ import annotations

import dataclasses
import operator
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from icrl_bench.envs.dynamics import FROZEN, GOAL, TaskTables, compile_task
from icrl_bench.envs.generator import MAX_MAP_SIZE, MapGenerator, check_flag
from icrl_bench.envs.rendering import MapPainter, render_ansi
from icrl_bench.envs.schedule import EpisodeStart, ExcludingSource, FixedTask, TaskSchedule, TaskSource
from icrl_bench.envs.stitching import StitchingGenerator
from icrl_bench.envs.task import ACTION_NAMES, InvalidTaskError, TaskSpec

RESET_OPTIONS = ("task", "new_task")


def as_task(task: TaskSpec | dict | str) -> TaskSpec:
    """A `TaskSpec` from a spec, its dict form, or a map string like ``"SFFF/FHFH/FFFH/HFFG"``."""
    if isinstance(task, TaskSpec):
        return task
    if isinstance(task, dict):
        return TaskSpec.from_dict(task)
    if isinstance(task, str):
        return TaskSpec(rows=task)
    raise InvalidTaskError(f"a task must be a TaskSpec, a dict or a map string, got {type(task).__name__}")


def fitting_task(task: TaskSpec | dict | str, max_height: int, max_width: int) -> TaskSpec:
    """`as_task(task)`, raising if it is larger than the env's observation space and render canvas."""
    spec = as_task(task)
    if spec.nrow > max_height or spec.ncol > max_width:
        raise InvalidTaskError(
            f"task is {spec.nrow}x{spec.ncol} but this env's maps are at most {max_height}x{max_width}: "
            f"make the env with larger height/width ranges (up to {MAX_MAP_SIZE}), or with this task as its task="
        )
    return spec


def new_task_option(options: dict[str, Any]) -> bool:
    """The reset option ``new_task`` (default False): True or False, never just any truthy value."""
    return check_flag("reset option new_task", options.get("new_task", False))


def task_seed(env: gym.Env) -> int:
    """The seed of an env's task stream: its Gymnasium seed, or a draw from `np_random` if that was set by hand."""
    seed = env.np_random_seed
    return seed if seed >= 0 else int(env.np_random.integers(2**63))


def make_source(task: TaskSpec | dict | str | None = None, stitching: bool = False,
                exclude_maps: frozenset[str] | None = None, **generator_kwargs: Any) -> TaskSource:  # fmt: skip
    """The task source an environment draws from: a fixed task, stitching tasks, or paper-style maps.

    A fixed task accepts only ``max_steps`` (it replaces the task's own step limit). ``exclude_maps``: map ids
    (`TaskSpec.map_id`) never drawn, e.g. ``icrl_bench.protocol.evaluation_map_ids()`` for a training env.
    """
    if exclude_maps is not None:
        if task is not None:
            raise TypeError("exclude_maps applies to drawn maps, not to a fixed task")
        banned = frozenset(exclude_maps)
        if not all(isinstance(m, str) for m in banned):
            raise TypeError("exclude_maps must be map ids (strings, TaskSpec.map_id)")
        return ExcludingSource(make_source(None, stitching, **generator_kwargs), banned)
    stitching = check_flag("stitching", stitching)
    if task is not None:
        spec = as_task(task)
        extra = sorted(set(generator_kwargs) - {"max_steps"})
        if extra or stitching:
            raise TypeError(
                f"a fixed task takes no generator arguments but max_steps, got {extra}"
                + (" and stitching=True" if stitching else "")
            )
        if "max_steps" in generator_kwargs:
            spec = spec.replace(max_steps=generator_kwargs["max_steps"])
        return FixedTask(spec)
    cls = StitchingGenerator if stitching else MapGenerator
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(generator_kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"unknown argument(s) {unknown} for {cls.__name__}; allowed: {allowed}")
    return cls(**generator_kwargs)


class ICRLFrozenLakeEnv(gym.Env):
    """
    ## Description
    Gymnasium's Frozen Lake, but the map is hidden and drawn afresh for every *trial* of several episodes, from
    the distribution of Rentschler & Roberts (2025). The agent never sees the map: it learns where the holes and
    goals are by acting, and an in-context learner should do better in later episodes of a trial than in the
    first. Maps have several start (S) and goal (G) tiles; a start is drawn uniformly at each reset.

    ## Action Space
    `Discrete(4)`: 0 left, 1 down, 2 right, 3 up (Gymnasium's order). A task may permute them
    (`TaskSpec.action_permutation`): action `a` then moves in direction `permutation[a]`.

    ## Observation Space
    `Discrete(max_height * max_width)` of the task source: the tile index `row * ncols + col` of the
    current map (its own number of columns), as in the paper.

    ## Starting State
    A start tile of the current map, uniformly at random.

    ## Rewards
    1.0 on entering a goal, else 0.0.

    ## Episode End
    Termination on entering a hole or a goal. Truncation after the task's `max_steps` steps (100 by default),
    enforced by the environment itself because the limit belongs to the task (it must hold in the batched
    env and across non-stationary changes too); so `env.spec.max_episode_steps` is None.

    ## Trials (reset semantics)
    - `reset(seed=s)`: seeds the dynamics and the task stream, draws a new task, starts a trial.
    - `reset()`: next episode of the same trial, on the same task (so autoreset vector envs keep a task for the
      whole trial) - unless `episodes_per_task` or `change_every` say otherwise.
    - `reset(options={"task": spec})`: starts a trial on an explicit task (`TaskSpec`, dict or map string).
    - `reset(options={"new_task": True})`: starts a trial on the next task of the stream.
    - `episodes_per_task=K`: a new trial (new task) every K episodes, for RL^2-style training.
    - `change_every=K`: the task changes inside the trial every K episodes, without a signal (non-stationary);
      `change_kind` is `resample` (fresh map, default), `mutate`, `move_goal` or `permute`. `change_kind` needs
      `change_every`, and `n_mutations` (tiles flipped per change, default 2) needs `change_kind="mutate"`.

    ## Randomness
    Gymnasium's `np_random` drives the dynamics exactly as in `FrozenLake-v1` (one uniform draw per reset for
    the start, one per step for the slip), so with a fixed task the two envs match step for step. Tasks come
    from a second stream derived from the same seed (`schedule.task_rng`).

    ## Information
    Reset `info`: `task_id` (content hash of the task), `trial_episode` (index within the trial),
    `task_changed` (the task differs from the previous episode's), and `demonstrations` (tuples of
    `Transition`) at the start of a trial whose task has them. Step `info` is empty. The map is never in
    `info` or the observation.

    ## Arguments
    `render_mode` (`ansi`, `rgb_array`, `human`); `task` (a fixed task); `stitching` (draw generated stitching
    tasks); `episodes_per_task`, `change_every`, `change_kind`, `n_mutations` (schedule); any argument of
    `MapGenerator` (`height`, `width`, `p_start`, `p_goal`, `p_hole`, `min_hops`, `success_rate`,
    `permute_actions`, `max_steps`) or of `StitchingGenerator` when `stitching=True`. Wrong types are errors,
    never coerced; generated maps are at most `MAX_MAP_SIZE` (32) tiles high and wide, and settings that
    (almost) never give a valid map fail within a second, naming the parameters to change.

    ## Version History
    - v0: first version.
    """

    metadata = {"render_modes": ["ansi", "rgb_array", "human"], "render_fps": 4}

    def __init__(
        self,
        render_mode: str | None = None,
        *,
        task: TaskSpec | dict | str | None = None,
        stitching: bool = False,
        episodes_per_task: int | None = None,
        change_every: int | None = None,
        change_kind: str | None = None,
        n_mutations: int | None = None,
        **generator_kwargs: Any,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.source = make_source(task, stitching, **generator_kwargs)
        self.schedule = TaskSchedule(self.source, episodes_per_task, change_every, change_kind, n_mutations)
        self.max_height, self.max_width = self.source.max_height, self.source.max_width
        self.observation_space = spaces.Discrete(self.max_height * self.max_width)
        self.action_space = spaces.Discrete(4)
        self._tables: TaskTables | None = None
        self._s = 0
        self._elapsed = 0
        self._trial_episode = -1
        self._last_action: int | None = None
        self._painter: MapPainter | None = None

    @property
    def task(self) -> TaskSpec:
        """The current task (privileged: for oracles, rendering and analysis, never for the agent)."""
        if self.schedule.task is None:
            raise RuntimeError("call reset() before asking for the task")
        return self.schedule.task

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        options = options or {}
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; allowed: {list(RESET_OPTIONS)}")
        new_task = new_task_option(options)
        # Validate before touching any state: a bad option leaves the env as it was.
        task = fitting_task(options["task"], self.max_height, self.max_width) if "task" in options else None
        super().reset(seed=seed)
        if seed is not None or self.schedule.rng is None:
            self.schedule.seed(task_seed(self))
        start = self.schedule.next_episode(self._trial_episode, task=task, new_task=new_task or seed is not None)
        self._trial_episode = start.trial_episode
        self._begin(start)
        return self._s, start.info()

    def _begin(self, start: EpisodeStart) -> None:
        self._tables = compile_task(start.task)
        self._s = self._tables.sample_start(self.np_random.random())
        self._elapsed = 0
        self._last_action = None
        if self.render_mode == "human":
            self.render()

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        t = self._tables
        if t is None:
            raise RuntimeError("call reset() before step()")
        try:
            a = -1 if isinstance(action, (bool, np.bool_)) else operator.index(action)
        except TypeError:
            a = -1
        if not 0 <= a < 4:
            raise ValueError(f"invalid action {action!r}: use an integer 0..3 ({', '.join(f'{i}={n}' for i, n in enumerate(ACTION_NAMES))})")
        u = self.np_random.random()
        s = self._s
        if t.kind[s] == FROZEN:
            s = t.next_tile[s][t.slip_direction(a, u)]
            kind = t.kind[s]
            reward, terminated = (1.0 if kind == GOAL else 0.0), kind != FROZEN
        else:  # stepping on after the episode ended: stay, as FrozenLake-v1 does
            reward, terminated = 0.0, True
        self._s = s
        self._last_action = a
        self._elapsed += 1
        if self.render_mode == "human":
            self.render()
        return s, reward, terminated, self._elapsed >= t.max_steps, {}

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode to gymnasium.make")
            return None
        if self._tables is None:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "ansi":
            return render_ansi(self.task, self._s, self._last_action)
        if self._painter is None:
            self._painter = MapPainter(self.max_height, self.max_width, self.render_mode, self.metadata["render_fps"])
        return self._painter.draw(self.task, self._s)

    def close(self) -> None:
        if self._painter is not None:
            self._painter.close()
            self._painter = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_painter"] = None  # pygame surfaces do not pickle; the copy draws afresh
        return state
