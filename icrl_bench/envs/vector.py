"""`ICRLFrozenLakeVectorEnv`: N Frozen Lake trials stepped together with numpy, no Python loop per sub-env.

Same transitions, rewards, flags and infos as `SyncVectorEnv` over N `ICRLFrozenLakeEnv`s seeded
``seed, seed + 1, ...`` (next-step autoreset): each sub-env keeps Gymnasium's own PCG64 stream, read ahead in
blocks, and consumes one draw per step or reset exactly as the single env does. Python runs per sub-env only
where a task is drawn or changed (a new trial, a non-stationary change), never for a plain step or reset.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from icrl_bench.envs.dynamics import FROZEN, GOAL, compile_task, expand_tables
from icrl_bench.envs.frozen_lake import RESET_OPTIONS, fitting_task, make_source, new_task_option
from icrl_bench.envs.generator import TaskBlock, TaskStream, prefill, task_stream_of
from icrl_bench.envs.rendering import MapPainter, render_ansi
from icrl_bench.envs.schedule import TaskSchedule
from icrl_bench.envs.task import TaskSpec

_BLOCK = 512  # uniforms read ahead per sub-env
_AHEAD = 16  # a sub-env's task stream draws its next block with others' once it has at most this many tasks left
# Slip draw -> direction offset: below fail (-1), below fail+success (0), below 1 (+1), else -1 (Gymnasium's argmax).
_SLIP_OFFSET = np.array([-1, 0, 1, -1], dtype=np.int64)


class ICRLFrozenLakeVectorEnv(VectorEnv):
    """A numpy-batched `ICRLFrozenLakeEnv` (see its docstring for the task and trial semantics).

    Created by ``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``; takes the same
    keyword arguments as the single env. Reset options: ``task`` (one task for every sub-env), ``tasks`` (one per
    sub-env), ``new_task`` and ``reset_mask`` (reset only the sub-envs where the mask is True).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int,
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
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.num_envs = n = num_envs
        self.render_mode = render_mode
        self.source = make_source(task, stitching, **generator_kwargs)
        self.schedules = [
            TaskSchedule(self.source, episodes_per_task, change_every, change_kind, n_mutations) for _ in range(n)
        ]
        self.max_height, self.max_width = self.source.max_height, self.source.max_width
        tiles = self.max_height * self.max_width
        self.single_observation_space = spaces.Discrete(tiles)
        self.single_action_space = spaces.Discrete(4)
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)

        self._gens: list[np.random.Generator | None] = [None] * n
        self._streams: list[TaskStream | None] | None = None  # see _task_streams
        self._buf = np.zeros((_BLOCK, n))  # [draw, sub-env]: column i is sub-env i's stream, read ahead
        self._cursor = np.zeros(n, dtype=np.int64)
        self._lockstep = True
        # Per-sub-env transition tables, padded to the largest map.
        self._next = np.zeros((n, tiles, 4), dtype=np.int64)
        self._kind = np.zeros((n, tiles), dtype=np.int8)
        self._perm = np.zeros((n, 4), dtype=np.int64)
        self._slip = np.zeros((3, n))  # cumsum of [fail, success, fail] per sub-env
        self._starts = np.zeros((n, tiles), dtype=np.int64)
        self._start_cdf = np.full((n, tiles), np.inf)
        self._max_steps = np.zeros(n, dtype=np.int64)
        self._task_ids = np.full(n, None, dtype=object)
        self._ncol = np.ones(n, dtype=np.int64)
        # Episode state.
        self._pos = np.zeros(n, dtype=np.int64)
        self._elapsed = np.zeros(n, dtype=np.int64)
        self._trial_episode = np.full(n, -1, dtype=np.int64)
        self._autoreset = np.zeros(n, dtype=bool)
        self._started = np.zeros(n, dtype=bool)
        self._last_action = np.full(n, -1, dtype=np.int64)
        self._painters: list[MapPainter] | None = None
        self._arange = np.arange(n)
        # Offsets into the flattened tables, so a step is a few np.take calls.
        self._base_tile = self._arange * tiles
        self._base_next = self._base_tile * 4
        self._base_perm = self._arange * 4

    # ------------------------------------------------------------ randomness
    def _seed_env(self, i: int, seed: int | None) -> None:
        self._gens[i], used = seeding.np_random(seed)
        self.schedules[i].seed(used)
        self._streams = None
        self._buf[:, i] = self._gens[i].random(_BLOCK)
        self._cursor[i] = 0

    def _refill(self, envs: np.ndarray) -> None:
        for i in envs:
            self._buf[:, i] = self._gens[i].random(_BLOCK)
        self._cursor[envs] = 0

    def _uniforms(self, idx: np.ndarray) -> np.ndarray:
        """The next uniform draw of each sub-env in `idx` (each its own Gymnasium stream)."""
        u = self._buf[self._cursor[idx], idx]
        self._cursor[idx] += 1
        self._refill(idx[self._cursor[idx] == _BLOCK])
        self._lockstep = bool((self._cursor == self._cursor[0]).all())
        return u

    def _uniforms_all(self) -> np.ndarray:
        """The next uniform draw of every sub-env; a row slice while all streams are in step (the usual case)."""
        if not self._lockstep:
            return self._uniforms(self._arange)
        c = int(self._cursor[0])
        u = self._buf[c].copy()
        self._cursor += 1
        if c + 1 == _BLOCK:
            self._refill(self._arange)
        return u

    # ----------------------------------------------------------------- tasks
    def _install(self, i: int, task: TaskSpec) -> None:
        t = compile_task(task)
        n, k = task.n_tiles, len(t.starts)
        self._next[i, :n] = t.next_tile
        self._kind[i, :n] = t.kind
        self._kind[i, n:] = FROZEN
        self._perm[i] = t.perm
        self._slip[:, i] = t.slip_cdf
        self._starts[i] = t.starts[0]  # padding: see TaskTables.sample_start
        self._starts[i, :k] = t.starts
        self._start_cdf[i] = np.inf
        self._start_cdf[i, :k] = t.start_cdf
        self._max_steps[i] = t.max_steps
        self._task_ids[i] = task.task_id
        self._ncol[i] = task.ncol

    def _task_streams(self) -> list[TaskStream | None]:
        """Each sub-env's `TaskStream` (None where its source has none), cached until a sub-env is seeded."""
        if self._streams is None:
            self._streams = [None if s.rng is None else task_stream_of(s.draws()) for s in self.schedules]
        return self._streams

    def _install_blocks(self, envs: np.ndarray, refs: list[tuple[TaskBlock, int]]) -> None:
        """`_install` for many sub-envs at once, from their tasks' rows in generator blocks (no TaskSpec built)."""
        generator = refs[0][0].maps.generator
        if any(block.maps.generator is not generator for block, _ in refs):  # one source per env: a bug otherwise
            raise RuntimeError("tasks of different generators in one vector env")
        rows = np.concatenate([block.table(j) for block, j in refs]).reshape(len(refs), -1)
        tables = expand_tables(rows, self.max_width)
        self._kind[envs] = tables["kind"]
        self._next[envs] = tables["next_tile"]
        self._perm[envs] = tables["perm"]
        fail = (1.0 - generator.success_rate) / 2.0
        self._slip[:, envs] = np.cumsum([fail, generator.success_rate, fail])[:, None]  # as compile_task
        self._starts[envs] = tables["starts"]
        self._start_cdf[envs] = tables["start_cdf"]
        self._max_steps[envs] = generator.max_steps
        self._ncol[envs] = tables["ncol"]
        self._task_ids[envs] = [block.task_id(j) for block, j in refs]

    def _check_task(self, task: TaskSpec | dict | str) -> TaskSpec:
        return fitting_task(task, self.max_height, self.max_width)

    def _begin_episodes(
        self, idx: np.ndarray, forced: Sequence[TaskSpec | None] | None, new_task: Any, u: np.ndarray | None = None
    ) -> dict:
        """Start the next episode of each sub-env in `idx` (with start draws `u` if already taken).

        Returns their reset infos, batched as Gymnasium's vector envs batch them.
        """
        nxt = self._trial_episode[idx] + 1
        new_trial, change = self.schedules[0].events(nxt)
        new_trial = new_trial | new_task | (self._trial_episode[idx] < 0)
        if forced is not None:
            new_trial = new_trial | np.array([t is not None for t in forced], dtype=bool)
        drawing = new_trial if forced is None else new_trial & np.array([t is None for t in forced], dtype=bool)
        # The new trials' tasks: their streams' next blocks checked in one batched test, not one by one (the
        # same tasks), drawn ahead for every sub-env when some need one - unless a non-stationary schedule shares
        # the streams' rngs with its changes: then only streams that draw now are touched.
        schedules = self.schedules
        ahead = _AHEAD if schedules[0].change_every is None else 0
        streams = self._task_streams()
        prefill([streams[i] for i in idx[drawing].tolist()], pool=lambda: streams, ahead=ahead)
        demos: dict[int, Any] = {}
        fast: list[int] = []  # sub-envs whose new task comes from a generator's block, installed in one go
        refs: list[tuple[TaskBlock, int]] = []
        todo = np.flatnonzero(new_trial | change)
        for j, i, is_new in zip(todo.tolist(), idx[todo].tolist(), new_trial[todo].tolist()):
            if is_new:
                if forced is None or forced[j] is None:
                    ref = schedules[i].draw_ref()
                    if ref is not None:
                        refs.append(ref)
                        fast.append(i)
                        continue
                task = schedules[i].new_trial(forced[j] if forced is not None else None)
                if task.demonstrations:
                    demos[i] = tuple(task.rollout(d) for d in task.demonstrations)
            else:
                task = schedules[i].change()
            self._install(i, task)
        if fast:
            self._install_blocks(np.array(fast), refs)
        self._trial_episode[idx] = np.where(new_trial, 0, nxt)
        if u is None:
            u = self._uniforms(idx)
        pick = np.argmax(self._start_cdf[idx] > u[:, None], axis=1)
        self._pos[idx] = self._starts[idx, pick]
        self._elapsed[idx] = 0
        self._last_action[idx] = -1
        return self._infos(idx, self._trial_episode[idx], new_trial | change, demos)

    def _infos(self, idx: np.ndarray, episodes: np.ndarray, changed: np.ndarray, demos: dict[int, Any]) -> dict:
        n = self.num_envs
        mask = np.zeros(n, dtype=bool)
        mask[idx] = True
        task_id = np.full(n, None, dtype=object)
        task_id[idx] = self._task_ids[idx]
        trial_episode = np.zeros(n, dtype=int)
        trial_episode[idx] = episodes
        task_changed = np.zeros(n, dtype=bool)
        task_changed[idx] = changed
        infos = {
            "task_id": task_id, "_task_id": mask,
            "trial_episode": trial_episode, "_trial_episode": mask.copy(),
            "task_changed": task_changed, "_task_changed": mask.copy(),
        }  # fmt: skip
        if demos:
            infos["demonstrations"] = np.full(n, None, dtype=object)
            infos["_demonstrations"] = np.zeros(n, dtype=bool)
            for i, d in demos.items():
                infos["demonstrations"][i] = d
                infos["_demonstrations"][i] = True
        return infos

    # ------------------------------------------------------------------- API
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        n = self.num_envs
        options = dict(options or {})
        unknown = sorted(set(options) - {*RESET_OPTIONS, "tasks", "reset_mask"})
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; allowed: {[*RESET_OPTIONS, 'tasks', 'reset_mask']}")
        mask = np.asarray(options.get("reset_mask", np.ones(n, dtype=bool)))
        if mask.shape != (n,) or mask.dtype != np.bool_:
            raise ValueError(f"reset_mask must be a bool array of shape ({n},), got {mask.dtype} {mask.shape}")
        idx = np.flatnonzero(mask)
        if "task" in options and "tasks" in options:
            raise ValueError("give either 'task' (for every sub-env) or 'tasks' (one per sub-env), not both")
        new_task = new_task_option(options)
        # Validate every option before touching any state: a bad option leaves the env as it was.
        forced: list[TaskSpec | None] | None = None
        if "task" in options:
            forced = [self._check_task(options["task"])] * len(idx)
        elif "tasks" in options:
            tasks = list(options["tasks"])
            if len(tasks) != n:
                raise ValueError(f"'tasks' needs one task per sub-env ({n}), got {len(tasks)}")
            forced = [None if tasks[i] is None else self._check_task(tasks[i]) for i in idx]
        if seed is None:
            seeds: list[int | None] = [None] * n
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(n)]
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"got {len(seeds)} seeds for {n} sub-envs")
        seeded = np.zeros(n, dtype=bool)
        for i in idx:
            if seeds[i] is not None or self._gens[i] is None:
                self._seed_env(int(i), seeds[i])
                seeded[i] = seeds[i] is not None
        infos = self._begin_episodes(idx, forced, bool(new_task) | seeded[idx])
        self._autoreset[idx] = False
        self._started[idx] = True
        return self._pos.copy(), infos

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started.all():
            raise RuntimeError(
                f"sub-env(s) {np.flatnonzero(~self._started)[:5].tolist()} were never reset: reset them before step()"
            )
        a = np.asarray(actions)
        if a.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {a.shape}")
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"actions must be integers 0..3, got dtype {a.dtype}")
        bad = np.flatnonzero((a < 0) | (a > 3))
        if len(bad):
            raise ValueError(
                f"invalid action(s) {a[bad[:5]].tolist()} in sub-env(s) {bad[:5].tolist()}: use integers 0..3 "
                "(0=left, 1=down, 2=right, 3=up)"
            )
        # Every sub-env consumes exactly one draw per step: a slip, or its start when it autoresets.
        u = self._uniforms_all()
        s = self._pos
        live = self._kind.ravel().take(self._base_tile + s) == FROZEN
        slip = self._slip
        offset = _SLIP_OFFSET.take((u >= slip[0]).view(np.int8) + (u >= slip[1]).view(np.int8) + (u >= slip[2]).view(np.int8))
        direction = (self._perm.ravel().take(self._base_perm + a) + offset) & 3
        new = np.where(live, self._next.ravel().take(self._base_next + s * 4 + direction), s)
        kind = self._kind.ravel().take(self._base_tile + new)
        reward = (live & (kind == GOAL)).astype(np.float64)
        terminated = ~live | (kind != FROZEN)
        self._elapsed += 1
        truncated = self._elapsed >= self._max_steps
        self._pos = new
        self._last_action = a.astype(np.int64)
        infos: dict[str, Any] = {}
        reset_idx = np.flatnonzero(self._autoreset)
        if len(reset_idx):  # next-step autoreset: these sub-envs start an episode instead of stepping
            reward[reset_idx] = 0.0
            terminated[reset_idx] = False
            truncated[reset_idx] = False
            infos = self._begin_episodes(reset_idx, None, False, u[reset_idx])
        self._autoreset = terminated | truncated
        return self._pos.copy(), reward, terminated, truncated, infos

    def render(self) -> tuple | None:
        """A tuple with each sub-env's frame (`rgb_array`) or text (`ansi`)."""
        if self.render_mode is None:
            return None
        tasks = [s.task for s in self.schedules]
        if any(t is None for t in tasks):
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "ansi":
            return tuple(
                render_ansi(t, int(p), None if la < 0 else int(la)) for t, p, la in zip(tasks, self._pos, self._last_action)
            )
        if self._painters is None:
            self._painters = [MapPainter(self.max_height, self.max_width, "rgb_array")]
        return tuple(self._painters[0].draw(t, int(p)) for t, p in zip(tasks, self._pos))

    def close_extras(self, **kwargs: Any) -> None:
        self._painters = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_painters"] = None  # pygame surfaces do not pickle
        return state
