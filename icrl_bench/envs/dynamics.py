"""Transition tables compiled from a `TaskSpec`, shared by the single and the batched environment.

The random numbers are used exactly as Gymnasium's `FrozenLake-v1` uses them, so that under the same seed
both environments produce the same trajectories: one uniform draw per reset picks the start
(``argmax(cumsum(p_start) > u)``) and one uniform draw per step picks the slip
(``argmax(cumsum([fail, success, fail]) > u)`` over directions ``a-1, a, a+1``), slippery or not.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np

from icrl_bench.envs.task import MOVES, TaskSpec

FROZEN, HOLE, GOAL = 0, 1, 2  # tile kinds; start tiles are FROZEN


@dataclasses.dataclass(frozen=True)
class TaskTables:
    """Everything a step needs, precomputed as plain tuples (fast to index from Python)."""

    nrow: int
    ncol: int
    next_tile: tuple[tuple[int, int, int, int], ...]  # [tile][direction] -> tile
    kind: tuple[int, ...]  # [tile] -> FROZEN / HOLE / GOAL
    starts: tuple[int, ...]
    start_cdf: tuple[float, ...]  # cumulative start probabilities, as Gymnasium computes them
    slip_cdf: tuple[float, float, float]  # cumsum of [fail, success, fail]
    perm: tuple[int, int, int, int]  # agent action -> move direction
    max_steps: int

    def sample_start(self, u: float) -> int:
        """The start tile for uniform draw `u`."""
        for tile, c in zip(self.starts, self.start_cdf):
            if c > u:
                return tile
        # cumsum can round to just below 1.0; Gymnasium would then return tile 0 (maybe not a start).
        return self.starts[0]

    def slip_direction(self, action: int, u: float) -> int:
        """The direction actually moved for `action` and uniform draw `u`."""
        d = self.perm[action]
        c0, c1, c2 = self.slip_cdf
        if u < c0:
            return (d - 1) % 4
        if u < c1:
            return d
        if u < c2:
            return (d + 1) % 4
        return (d - 1) % 4  # argmax over all-False picks index 0, as Gymnasium's categorical_sample


@lru_cache(maxsize=1024)
def _moves(nrow: int, ncol: int) -> tuple[tuple[int, ...], ...]:
    """Where each direction leads from each tile of an `nrow` x `ncol` map (walls keep you in place)."""
    r, c = np.divmod(np.arange(nrow * ncol), ncol)
    moved = [np.clip(r + dr, 0, nrow - 1) * ncol + np.clip(c + dc, 0, ncol - 1) for dr, dc in MOVES]
    return tuple(map(tuple, np.stack(moved, 1).tolist()))


@lru_cache(maxsize=8192)
def compile_task(task: TaskSpec) -> TaskTables:
    """The transition tables of `task` (cached: tasks are immutable)."""
    kinds = {"S": FROZEN, "F": FROZEN, "H": HOLE, "G": GOAL}
    kind = tuple(kinds[t] for t in "".join(task.rows))
    next_tile = _moves(task.nrow, task.ncol)  # = task.move(s, d): one table per map shape (tested)
    is_start = np.array([t == "S" for t in "".join(task.rows)], dtype=np.float64)
    p_start = is_start / is_start.sum()
    cdf_all = np.cumsum(p_start)
    start_cdf = tuple(float(cdf_all[s]) for s in task.starts)
    fail = (1.0 - task.success_rate) / 2.0
    c = np.cumsum([fail, task.success_rate, fail])
    return TaskTables(
        nrow=task.nrow,
        ncol=task.ncol,
        next_tile=next_tile,
        kind=kind,
        starts=task.starts,
        start_cdf=start_cdf,
        slip_cdf=(float(c[0]), float(c[1]), float(c[2])),
        perm=task.action_permutation or (0, 1, 2, 3),
        max_steps=task.max_steps,
    )


@lru_cache(maxsize=16)
def shape_moves(max_height: int, max_width: int) -> np.ndarray:
    """`_moves` of every map shape up to `max_height` x `max_width`, each flattened and padded to the largest map
    (float64, as `compile_many` stores it): row ``h * (max_width + 1) + w`` for an h x w map. At most 35 MB (32 x
    32), built once per size."""
    T = max_height * max_width
    out = np.zeros(((max_height + 1) * (max_width + 1), 4 * T))
    for h in range(1, max_height + 1):
        for w in range(1, max_width + 1):
            out[h * (max_width + 1) + w, : 4 * h * w] = np.ravel(_moves(h, w))
    return out


def table_columns(n_tiles: int) -> dict[str, slice]:
    """Where each table of `compile_many` lies in its rows, for maps of at most `n_tiles` tiles."""
    T = n_tiles
    spans = {"kind": T, "starts": T, "start_cdf": T, "next_tile": 4 * T, "perm": 4, "slip_cdf": 3, "ncol": 1,
             "max_steps": 1}  # fmt: skip
    out, at = {}, 0
    for name, width in spans.items():
        out[name], at = slice(at, at + width), at + width
    return out


def compile_many(kind: np.ndarray, is_start: np.ndarray, heights: np.ndarray, widths: np.ndarray,
                 perms: np.ndarray | None, success_rate: float, max_steps: int, max_width: int) -> np.ndarray:  # fmt: skip
    """`compile_task` of a batch of maps at once, each map's tables as one float64 row (columns: `table_columns`).

    `kind` and `is_start` are (k, T): tile ``row * width + col`` of each map, padded to T tiles (padding FROZEN,
    never a start); T is ``max_height * max_width`` of the maps' source. The rows hold what `TaskTables` holds, padded as the vector env pads it: ``starts`` after
    the last start repeat the first, ``start_cdf`` is inf there; ``next_tile`` past the map is arbitrary (never
    reached). Exact: the floats are computed as `compile_task` computes them, the rest are small integers.
    """
    k, T = kind.shape
    cols = table_columns(T)
    out = np.empty((k, cols["max_steps"].stop))
    out[:, cols["kind"]] = kind
    # Starts ascending, then the first one repeated; their cdf (compile_task's cumsum, row by row), then inf.
    count = is_start.sum(axis=1)
    cdf_all = np.cumsum(is_start / count[:, None].astype(np.float64), axis=1)
    rows, tiles = np.nonzero(is_start)  # row-major: each map's starts ascending
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
    starts = out[:, cols["starts"]]
    starts[:] = tiles[np.cumsum(count) - count][:, None]
    starts[rows, rank] = tiles
    cdf = out[:, cols["start_cdf"]]
    cdf[:] = np.inf
    cdf[rows, rank] = cdf_all[rows, tiles]
    out[:, cols["next_tile"]] = shape_moves(T // max_width, max_width)[heights * (max_width + 1) + widths]
    out[:, cols["perm"]] = (0, 1, 2, 3) if perms is None else perms
    fail = (1.0 - success_rate) / 2.0
    out[:, cols["slip_cdf"]] = np.cumsum([fail, success_rate, fail])
    out[:, cols["ncol"]] = widths[:, None]
    out[:, cols["max_steps"]] = max_steps
    return out


def transition_matrix(task: TaskSpec) -> np.ndarray:
    """``P[s, a, s']``: probability that action `a` in tile `s` leads to `s'` (terminal tiles absorb)."""
    t = compile_task(task)
    n = task.n_tiles
    P = np.zeros((n, 4, n))
    fail = (1.0 - task.success_rate) / 2.0
    for s in range(n):
        for a in range(4):
            if t.kind[s] != FROZEN:
                P[s, a, s] = 1.0
                continue
            d = t.perm[a]
            for delta, p in ((-1, fail), (0, task.success_rate), (1, fail)):
                P[s, a, t.next_tile[s][(d + delta) % 4]] += p
    return P


def optimal_q_tables(task: TaskSpec, horizon: int | None = None) -> np.ndarray:
    """``Q[h, s, a]``: best probability of reaching a goal within ``h + 1`` steps after taking `a` in `s`.

    Finite-horizon value iteration over the exact transition matrix (``horizon`` defaults to ``max_steps``).
    """
    t = compile_task(task)
    P = transition_matrix(task)
    kind = np.array(t.kind)
    live = kind == FROZEN
    entering_goal = P[:, :, kind == GOAL].sum(axis=2)  # [s, a]
    horizon = task.max_steps if horizon is None else horizon
    out = []
    value = np.zeros(task.n_tiles)
    for _ in range(horizon):
        out.append(entering_goal + P[:, :, live] @ value[live])
        new = np.where(live, out[-1].max(axis=1), 0.0)
        if len(out) > 1 and np.array_equal(out[-1], out[-2]):
            break  # converged: every longer horizon has the same table (callers index min(h, len - 1))
        value = new
    return np.array(out)


def _success_values(task: TaskSpec, horizon: int, optimal: bool) -> np.ndarray:
    """Probability of reaching a goal within `horizon` steps from each tile (random or optimal policy)."""
    t = compile_task(task)
    P = transition_matrix(task)
    kind = np.array(t.kind)
    live = kind == FROZEN
    entering_goal = P[:, :, kind == GOAL].sum(axis=2)  # [s, a]
    value = np.zeros(task.n_tiles)
    for _ in range(horizon):
        q = entering_goal + P[:, :, live] @ value[live]
        new = np.where(live, q.max(axis=1) if optimal else q.mean(axis=1), 0.0)
        if np.array_equal(new, value):
            break  # converged exactly (floating point): more steps change nothing
        value = new
    return value


def random_success_probability(task: TaskSpec) -> float:
    """Exact probability that a uniform-random policy reaches a goal in one episode (start drawn uniformly)."""
    return float(_success_values(task, task.max_steps, optimal=False)[list(task.starts)].mean())


def optimal_success_probability(task: TaskSpec) -> float:
    """Exact success probability of the best policy that knows the map (finite-horizon value iteration)."""
    return float(_success_values(task, task.max_steps, optimal=True)[list(task.starts)].mean())
