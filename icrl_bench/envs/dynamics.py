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
    """`_moves` of every map shape up to `max_height` x `max_width`, padded to the largest map: row
    ``h * (max_width + 1) + w`` is the (T, 4) table of an h x w map (T = max_height * max_width; 0 past the map,
    never reached). At most 17 MB (32 x 32), built once per size."""
    T = max_height * max_width
    out = np.zeros(((max_height + 1) * (max_width + 1), T, 4), dtype=np.int32)
    for h in range(1, max_height + 1):
        for w in range(1, max_width + 1):
            out[h * (max_width + 1) + w, : h * w] = _moves(h, w)
    return out


@lru_cache(maxsize=16)
def start_cdfs(n_tiles: int) -> np.ndarray:
    """Row c: the start cdf of a map with c starts, as `compile_task` computes it (a cumsum of 1/c per start,
    bit for bit: the non-start tiles of its cumsum add 0.0), then inf to `n_tiles` columns."""
    out = np.full((n_tiles + 1, n_tiles), np.inf)
    for c in range(1, n_tiles + 1):
        out[c, :c] = np.cumsum(np.full(c, 1.0 / c))
    return out


def compact_tables(kind: np.ndarray, is_start: np.ndarray, heights: np.ndarray, widths: np.ndarray,
                   perms: np.ndarray | None) -> np.ndarray:  # fmt: skip
    """What `compile_task` computes of a batch of maps of one source, as one small int16 row each (`expand_tables`
    makes the tables of it): kind (T), starts ascending then the first repeated (T), count of starts, height,
    width, action permutation (4).

    `kind` and `is_start` are (k, T): tile ``row * width + col`` of each map, padded to T tiles (padding FROZEN,
    never a start); T is ``max_height * max_width`` of the maps' source.
    """
    k, T = kind.shape
    out = np.empty((k, 2 * T + 7), dtype=np.int16)
    out[:, :T] = kind
    count = is_start.sum(axis=1)
    rows, tiles = np.nonzero(is_start)  # row-major: each map's starts ascending
    first = np.cumsum(count) - count
    starts = out[:, T : 2 * T]
    starts[:] = tiles[first][:, None]
    starts[rows, np.arange(len(rows)) - np.repeat(first, count)] = tiles
    out[:, 2 * T], out[:, 2 * T + 1], out[:, 2 * T + 2] = count, heights, widths
    out[:, 2 * T + 3 :] = (0, 1, 2, 3) if perms is None else perms
    return out


def expand_tables(rows: np.ndarray, max_width: int) -> dict[str, np.ndarray]:
    """The tables of `compact_tables` rows, as the vector env stores them (`TaskTables`' fields, padded to T
    tiles): kind, next_tile (T, 4), starts, start_cdf (inf past the starts), perm, ncol."""
    T = (rows.shape[1] - 7) // 2
    rows = rows.astype(np.int64)
    heights, widths = rows[:, 2 * T + 1], rows[:, 2 * T + 2]
    return {
        "kind": rows[:, :T],
        "next_tile": shape_moves(T // max_width, max_width)[heights * (max_width + 1) + widths],
        "starts": rows[:, T : 2 * T],
        "start_cdf": start_cdfs(T)[rows[:, 2 * T]],
        "perm": rows[:, 2 * T + 3 :],
        "ncol": widths,
    }


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
