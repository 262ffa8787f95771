"""Stitching tasks: two demonstrations whose paths cross, neither of which solves the task from a start alone.

`PAPER_STITCHING_TASK` is the hand-made task of Rentschler & Roberts (2025): on the 6x4 map
``HHFF/FFFF/SFFH/HFFF/HFFF/HFGF`` one demonstration goes down five times from tile 2 into the goal (tile 22),
the other goes right three times from the start (tile 8) into the hole at tile 11; the optimal stitched path
(right, right, down x3) is 5 moves.

`StitchingGenerator` draws new tasks of that kind: a single start S and goal G; demonstration B walks a
shortest path from S to a crossing tile X and then into a hole; demonstration A starts at a frozen tile that is
not S along a shortest path to G that passes X, never touching S. Following B fails, A never starts at
or passes through S, and B's prefix to X followed by A's suffix from X reaches G.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Iterable

import numpy as np

from icrl_bench.envs.generator import RngLike, SizeRanges, as_rng, check_range
from icrl_bench.envs.task import MOVES, Demonstration, InvalidTaskError, TaskSpec

PAPER_STITCHING_TASK = TaskSpec(
    rows=("HHFF", "FFFF", "SFFH", "HFFF", "HFFF", "HFGF"),
    demonstrations=(Demonstration(start=2, actions=(1, 1, 1, 1, 1)), Demonstration(start=8, actions=(2, 2, 2))),
)

_MAX_ATTEMPTS = 10_000


def _neighbours(tile: int, nrow: int, ncol: int) -> Iterable[tuple[int, int]]:
    """(direction, tile) pairs of the in-bounds neighbours of `tile`."""
    r, c = divmod(tile, ncol)
    for d, (dr, dc) in enumerate(MOVES):
        nr, nc = r + dr, c + dc
        if 0 <= nr < nrow and 0 <= nc < ncol:
            yield d, nr * ncol + nc


def _distances(target: int, allowed: set[int], nrow: int, ncol: int) -> dict[int, int]:
    """BFS distances to `target` over `allowed` tiles (target included)."""
    dist = {target: 0}
    queue = deque([target])
    while queue:
        t = queue.popleft()
        for _, n in _neighbours(t, nrow, ncol):
            if n in allowed and n not in dist:
                dist[n] = dist[t] + 1
                queue.append(n)
    return dist


def _walk(start: int, dist: dict[int, int], nrow: int, ncol: int, rng: np.random.Generator) -> list[int]:
    """Actions of a shortest path from `start` down the distance field `dist`, ties broken at random."""
    actions, tile = [], start
    while dist[tile] > 0:
        steps = [(d, n) for d, n in _neighbours(tile, nrow, ncol) if dist.get(n) == dist[tile] - 1]
        d, tile = steps[rng.integers(len(steps))]
        actions.append(d)
    return actions


@dataclasses.dataclass(frozen=True)
class StitchingGenerator(SizeRanges):
    """A seeded sampler of generated stitching tasks (see the module docstring).

    Args:
        height, width: (low, high) map size ranges, inclusive.
        p_hole: probability that a tile (other than S and G) is a hole.
        min_hops: the shortest start-to-goal path is at least this many moves.
        max_steps: step limit of every task.
    """

    height: tuple[int, int] = (4, 6)
    width: tuple[int, int] = (4, 6)
    p_hole: float = 0.2
    min_hops: int = 4
    max_steps: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "height", check_range("height", self.height))
        object.__setattr__(self, "width", check_range("width", self.width))
        if not 0.0 <= self.p_hole < 1.0:
            raise ValueError(f"p_hole must be in [0, 1), got {self.p_hole!r}")
        if self.height[1] * self.width[1] < 6:
            raise ValueError("stitching maps need at least 6 tiles: raise height or width")
        if self.max_steps < self.min_hops:
            raise ValueError(f"max_steps ({self.max_steps}) must be at least min_hops ({self.min_hops})")

    def sample(self, rng: RngLike = None) -> TaskSpec:
        """One stitching task; deterministic for an int seed or a Generator in a given state."""
        rng = as_rng(rng)
        for _ in range(_MAX_ATTEMPTS):
            task = self._attempt(rng)
            if task is not None:
                return task
        raise InvalidTaskError(f"no stitching task found in {_MAX_ATTEMPTS} attempts with {self}: lower p_hole")

    def sample_many(self, n: int, rng: RngLike = None) -> list[TaskSpec]:
        """`n` tasks drawn one after another from the same generator state."""
        rng = as_rng(rng)
        return [self.sample(rng) for _ in range(n)]

    def _attempt(self, rng: np.random.Generator) -> TaskSpec | None:
        nrow = int(rng.integers(self.height[0], self.height[1] + 1))
        ncol = int(rng.integers(self.width[0], self.width[1] + 1))
        n = nrow * ncol
        start, goal = (int(t) for t in rng.choice(n, size=2, replace=False))
        holes = {t for t in np.flatnonzero(rng.random(n) < self.p_hole).tolist() if t not in (start, goal)}
        frozen = set(range(n)) - holes - {start, goal}
        to_goal = _distances(goal, frozen | {start, goal}, nrow, ncol)
        if to_goal.get(start, 0) < self.min_hops:  # unreachable (absent) or too close
            return None
        # Crossing tile X: frozen, reachable from S without passing G, and from which G is reachable avoiding S.
        to_goal_no_s = _distances(goal, frozen | {goal}, nrow, ncol)
        from_start = _distances(start, frozen | {start}, nrow, ncol)
        crossings = sorted(t for t in frozen if t in from_start and t in to_goal_no_s)
        if not crossings:
            return None
        x = crossings[rng.integers(len(crossings))]
        # Demonstration B: S -> X, then X -> the nearest reachable hole (never through G).
        to_x = _distances(x, frozen | {start}, nrow, ncol)
        b_actions = _walk(start, to_x, nrow, ncol, rng)
        hole_paths = []
        for h in sorted(holes):
            to_h = _distances(h, frozen | {h}, nrow, ncol)
            if x in to_h:
                hole_paths.append((to_h[x], h, to_h))
        if not hole_paths:
            return None
        best = min(p[0] for p in hole_paths)
        nearest = [p for p in hole_paths if p[0] == best]
        b_actions += _walk(x, nearest[rng.integers(len(nearest))][2], nrow, ncol, rng)
        # Demonstration A: a shortest path (never through S) from a frozen tile other than X to G, via X.
        to_x_no_s = _distances(x, frozen, nrow, ncol)
        a_starts = sorted(
            t for t in to_x_no_s if t != x and t in to_goal_no_s and to_x_no_s[t] + to_goal_no_s[x] == to_goal_no_s[t]
        )
        if not a_starts:
            return None
        a_start = a_starts[rng.integers(len(a_starts))]
        a_actions = _walk(a_start, to_x_no_s, nrow, ncol, rng) + _walk(x, to_goal_no_s, nrow, ncol, rng)
        if max(len(a_actions), len(b_actions)) > self.max_steps:
            return None
        rows = [["H" if t in holes else "F" for t in range(r * ncol, (r + 1) * ncol)] for r in range(nrow)]
        rows[start // ncol][start % ncol] = "S"
        rows[goal // ncol][goal % ncol] = "G"
        return TaskSpec(
            rows=tuple("".join(r) for r in rows),
            max_steps=self.max_steps,
            demonstrations=(Demonstration(a_start, tuple(a_actions)), Demonstration(start, tuple(b_actions))),
        )
