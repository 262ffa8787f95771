"""A whole trial as one Gymnasium episode, for recurrent learners that reset their memory at every episode end.

`TrialEpisode` wraps an `ICRLFrozenLakeEnv`; `TrialEpisodeVectorEnv` wraps the numpy-batched
`ICRLFrozenLakeVectorEnv` with the same transitions (tested against `SyncVectorEnv`). Both are made by
``gymnasium.make("ICRLFrozenLakeTrial-v0", base="ICRLFrozenLakeLarge-v0", n_episodes=30)`` and
``gymnasium.make_vec("ICRLFrozenLakeTrial-v0", num_envs=N, vectorization_mode="vector_entry_point", ...)``;
`base` is any registered ICRL Frozen Lake id (its arguments apply; more may be given).

## Observation
A `Box(0, 1, (tiles + 6,), float32)`, concatenated: the one-hot tile (``tiles`` defaults to the env's
``max_height * max_width``; give a larger ``tiles`` to play maps of several sizes with one network), the one-hot
previous action (4 zeros at the trial's first step), the previous reward, and a flag that the previous step
ended an inner episode (the tile is then the start of the next one). `observation_layout(tiles)` gives the
slices.

## Episode end
``terminated`` only when the trial's `n_episodes`-th inner episode ends (the observation is then its last tile);
``truncated`` never (inner step limits end inner episodes). Inner episode boundaries are in `info`:
``inner_episode`` (index of the inner episode the observation belongs to), ``inner_ended``, ``inner_terminated``,
``inner_truncated`` (about the step just taken) and, at reset, the base env's reset info (``task_id``,
``demonstrations`` of stitching tasks: a policy reads them from there, if at all). Non-stationary bases change the
task inside the trial as the base env does.

Rewards are the base env's: a trial's return is its number of successful inner episodes.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from icrl_bench.envs.task import check_integer

DEFAULT_BASE = "ICRLFrozenLake-v0"


def observation_layout(tiles: int) -> dict[str, slice]:
    """Where each part of a trial observation sits."""
    return {"tile": slice(0, tiles), "prev_action": slice(tiles, tiles + 4), "prev_reward": slice(tiles + 4, tiles + 5),
            "inner_ended": slice(tiles + 5, tiles + 6)}  # fmt: skip


def trial_observations(tiles: int, tile: np.ndarray, action: np.ndarray, reward: np.ndarray,
                       ended: np.ndarray) -> np.ndarray:  # fmt: skip
    """Trial observations ``[n, tiles + 6]`` (`observation_layout`) of n steps; ``action`` -1: none (a trial's
    first step). The one encoding that the envs, the vector env and `TrialPolicyAgent` share."""
    rows = np.arange(len(tile))
    obs = np.zeros((len(tile), tiles + 6), np.float32)
    obs[rows, tile] = 1.0
    acted = action >= 0
    obs[rows[acted], tiles + action[acted]] = 1.0
    obs[:, tiles + 4] = reward
    obs[:, tiles + 5] = ended
    return obs


def demonstration_observations(tiles: int, demonstrations: Sequence[Sequence[Any]],
                               ) -> tuple[np.ndarray, tuple[int, float, bool]]:  # fmt: skip
    """The trial observations [L, tiles + 6] of a trial's demonstrations (lists of `Transition`s) read in order
    as if played (each step shows the step before it), and the (action, reward, ended) that the trial's first
    own observation then shows: how `TrialPolicyAgent` and RL^2 training both show demonstrations."""
    steps = [t for demo in demonstrations for t in demo]
    tile = np.array([t.obs for t in steps], np.int64)
    action = np.array([-1] + [t.action for t in steps[:-1]], np.int64)
    reward = np.array([0.0] + [t.reward for t in steps[:-1]])
    ended = np.array([False] + [t.terminated or t.truncated for t in steps[:-1]])
    last = steps[-1]
    return trial_observations(tiles, tile, action, reward, ended), (int(last.action), float(last.reward),
                                                                     bool(last.terminated or last.truncated))


def _base_kwargs(base: str, n_episodes: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    from icrl_bench.envs.registration import ENV_SPECS

    if base not in ENV_SPECS:
        raise ValueError(f"unknown base {base!r}: use one of {sorted(ENV_SPECS)}")
    if "episodes_per_task" in kwargs:
        raise TypeError("a trial env sets episodes_per_task itself (to n_episodes): drop it")
    check_integer("n_episodes", n_episodes)
    return ENV_SPECS[base][0] | kwargs | {"episodes_per_task": n_episodes}


def _tiles(tiles: int | None, env_tiles: int) -> int:
    if tiles is None:
        return env_tiles
    tiles = check_integer("tiles", tiles)
    if tiles < env_tiles:
        raise ValueError(f"tiles={tiles} is fewer than this env's {env_tiles} tiles: give at least {env_tiles}")
    return tiles


class TrialEpisode(gym.Wrapper):
    """One trial of `n_episodes` inner episodes of the wrapped env is one episode (see the module docstring)."""

    def __init__(self, env: gym.Env, n_episodes: int = 30, tiles: int | None = None) -> None:
        super().__init__(env)
        base = env.unwrapped
        if base.schedule.episodes_per_task != n_episodes:
            raise ValueError(f"wrap an env made with episodes_per_task={n_episodes} (it has "
                             f"{base.schedule.episodes_per_task}); gymnasium.make('ICRLFrozenLakeTrial-v0') does")  # fmt: skip
        self.n_episodes = n_episodes
        self.tiles = _tiles(tiles, int(env.observation_space.n))
        self.observation_space = spaces.Box(0.0, 1.0, (self.tiles + 6,), np.float32)
        self._episode = 0

    def _obs(self, tile: int, action: int | None, reward: float, ended: bool) -> np.ndarray:
        one = trial_observations(self.tiles, np.array([tile]), np.array([-1 if action is None else action]),
                                 np.array([reward]), np.array([ended]))  # fmt: skip
        return one[0]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        tile, info = self.env.reset(seed=seed, options=(options or {}) | {"new_task": True})
        self._episode = 0
        return self._obs(tile, None, 0.0, False), info | {"inner_episode": 0}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        tile, reward, terminated, truncated, info = self.env.step(action)
        ended = terminated or truncated
        info = info | {"inner_ended": ended, "inner_terminated": terminated, "inner_truncated": truncated}
        done = False
        if ended:
            self._episode += 1
            done = self._episode == self.n_episodes
            if not done:
                tile, reset_info = self.env.reset()  # the next inner episode (the schedule keeps or changes the task)
                info |= reset_info
        info["inner_episode"] = self._episode - 1 if done else self._episode
        return self._obs(tile, action, reward, ended), float(reward), done, False, info


def make_trial_env(base: str = DEFAULT_BASE, n_episodes: int = 30, tiles: int | None = None, **kwargs: Any) -> TrialEpisode:
    """The entry point of ``ICRLFrozenLakeTrial-v0``."""
    from icrl_bench.envs.frozen_lake import ICRLFrozenLakeEnv

    return TrialEpisode(ICRLFrozenLakeEnv(**_base_kwargs(base, n_episodes, kwargs)), n_episodes, tiles)


class TrialEpisodeVectorEnv(VectorEnv):
    """`TrialEpisode` over N sub-envs, stepped together with numpy (next-step autoreset, as Gymnasium's).

    Same transitions as ``SyncVectorEnv`` of N `TrialEpisode`s seeded ``seed, seed + 1, ...``: an inner episode
    end resets only those sub-envs at once (one start draw each, as the single wrapper's reset); a trial end
    leaves the sub-env for the base env's own next-step autoreset, which starts a new trial because its
    `episodes_per_task` is due.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, base: str = DEFAULT_BASE, n_episodes: int = 30, tiles: int | None = None,
                 render_mode: str | None = None, **kwargs: Any) -> None:  # fmt: skip
        from icrl_bench.envs.vector import ICRLFrozenLakeVectorEnv

        self.env = ICRLFrozenLakeVectorEnv(num_envs, render_mode, **_base_kwargs(base, n_episodes, kwargs))
        self.num_envs, self.render_mode, self.n_episodes = num_envs, render_mode, n_episodes
        self.tiles = _tiles(tiles, int(self.env.single_observation_space.n))
        self.single_observation_space = spaces.Box(0.0, 1.0, (self.tiles + 6,), np.float32)
        self.single_action_space = spaces.Discrete(4)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._episode = np.zeros(num_envs, np.int64)
        self._trial_over = np.zeros(num_envs, bool)

    def reset(self, *, seed: int | Sequence[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:  # fmt: skip
        options = dict(options or {})
        mask = np.asarray(options.get("reset_mask", np.ones(self.num_envs, bool)))
        tiles, info = self.env.reset(seed=seed, options=options | {"new_task": True})
        self._episode[mask] = 0
        self._trial_over[mask] = False
        none = np.full(self.num_envs, -1)
        fresh = trial_observations(self.tiles, tiles, none, np.zeros(self.num_envs), np.zeros(self.num_envs))
        self._last = np.where(mask[:, None], fresh, getattr(self, "_last", fresh))  # others keep their observation
        return self._last.copy(), info | {"inner_episode": self._episode.copy()}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        restarting = self._trial_over.copy()  # these sub-envs start a new trial now; their actions are ignored
        tiles, rewards, terminated, truncated, info = self.env.step(actions)
        ended = (terminated | truncated) & ~restarting
        self._episode[restarting] = 0
        self._episode[ended] += 1
        done = ended & (self._episode == self.n_episodes)
        self._trial_over = done.copy()
        again = ended & ~done
        if again.any():  # the next inner episode of these trials starts at once
            tiles, reset_info = self.env.reset(options={"reset_mask": again})
            info = _merge(info, reset_info, again)
        shown = np.where(restarting, -1, np.asarray(actions, np.int64))  # a trial's first step: no previous action
        obs = trial_observations(self.tiles, tiles, shown, rewards, ended)
        self._last = obs
        info = info | {"inner_ended": ended, "inner_terminated": terminated & ~restarting,
                       "inner_truncated": truncated & ~restarting,
                       "inner_episode": np.where(done, self._episode - 1, self._episode)}  # fmt: skip
        return obs.copy(), rewards, done, np.zeros(self.num_envs, bool), info

    def render(self) -> tuple | None:
        return self.env.render()

    def close_extras(self, **kwargs: Any) -> None:
        self.env.close()


def _merge(info: dict[str, Any], extra: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    """Vector infos of the step, with the reset infos of the masked sub-envs added (Gymnasium's `_key` masks)."""
    out = dict(info)
    for key, value in extra.items():
        if key.startswith("_"):
            continue
        present = extra.get("_" + key, mask)
        if key in out and isinstance(out[key], np.ndarray) and out[key].shape == np.shape(value):
            merged = out[key].copy()
            merged[present] = np.asarray(value)[present]
            out[key], out["_" + key] = merged, out.get("_" + key, np.zeros(len(mask), bool)) | present
        else:
            out[key], out["_" + key] = value, present
    return out


def make_trial_vector_env(num_envs: int, base: str = DEFAULT_BASE, n_episodes: int = 30, tiles: int | None = None,
                          render_mode: str | None = None, **kwargs: Any) -> TrialEpisodeVectorEnv:  # fmt: skip
    """The vector entry point of ``ICRLFrozenLakeTrial-v0``."""
    return TrialEpisodeVectorEnv(num_envs, base, n_episodes, tiles, render_mode, **kwargs)


class TrialMixVectorEnv(VectorEnv):
    """Several `TrialEpisodeVectorEnv`s side by side as one vector env: a training mixture of distributions
    (in-distribution, non-stationary, larger maps, ...). The sub-envs of part k follow those of part k-1; an int
    seed ``s`` seeds sub-env i with ``s + i`` as in one env. Every part must give observations of one width (the
    same ``tiles``); each keeps its own ``n_episodes`` (``episodes_per_env`` lists them). Infos carry the
    ``inner_*`` entries and any other entry that a part returned (filled for the others: ``demonstrations`` is
    ``None`` and its ``_demonstrations`` mask ``False`` outside a stitching part)."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, parts: Sequence[TrialEpisodeVectorEnv]) -> None:
        if not parts:
            raise ValueError("a mixture needs at least one part")
        if len({p.single_observation_space.shape for p in parts}) != 1:
            raise ValueError("every part of a mixture needs the same observation width: make them with one tiles=")
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [p.num_envs for p in self.parts])
        self.num_envs = int(self.offsets[-1])
        self.tiles = self.parts[0].tiles
        self.single_observation_space = self.parts[0].single_observation_space
        self.single_action_space = spaces.Discrete(4)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.episodes_per_env = np.concatenate([np.full(p.num_envs, p.n_episodes) for p in self.parts])

    def _slices(self) -> list[slice]:
        return [slice(int(a), int(b)) for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    def reset(self, *, seed: int | Sequence[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:  # fmt: skip
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        outs = []
        for part, where in zip(self.parts, self._slices()):
            part_options = dict(options)
            if mask is not None:
                part_options["reset_mask"] = np.asarray(mask)[where]
            part_seed = seed if seed is None else (seed + where.start if isinstance(seed, int) else list(seed)[where])
            outs.append(part.reset(seed=part_seed, options=part_options))
        return np.concatenate([o for o, _ in outs]), _concat_infos([i for _, i in outs], [p.num_envs for p in self.parts])

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        outs = [part.step(actions[where]) for part, where in zip(self.parts, self._slices())]
        obs, rewards, terminated, truncated = (np.concatenate([o[k] for o in outs]) for k in range(4))
        return obs, rewards, terminated, truncated, _concat_infos([o[4] for o in outs], [p.num_envs for p in self.parts])

    def close_extras(self, **kwargs: Any) -> None:
        for part in self.parts:
            part.close()


def _concat_infos(infos: list[dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """One vector info of the parts' infos: every 1-D entry that any part returned, filled where a part did not
    (``None`` in object arrays such as ``demonstrations``, zeros otherwise, and ``False`` in its ``_key`` mask)."""
    keys = sorted({k for i in infos for k, v in i.items() if np.ndim(v) == 1})
    out = {}
    for key in keys:
        like = next(np.asarray(i[key]) for i in infos if key in i)
        filler = (lambda n: np.full(n, None, object)) if like.dtype == object else (lambda n: np.zeros(n, like.dtype))
        out[key] = np.concatenate([np.asarray(i[key]) if key in i else filler(n) for i, n in zip(infos, sizes)])
    return out
