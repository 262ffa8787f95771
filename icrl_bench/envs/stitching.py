"""Stitching tasks: two demonstrations whose paths cross, neither of which solves the task from a start alone.

`PAPER_STITCHING_TASK` is the hand-made task of Rentschler & Roberts (2025): on the 6x4 map
``HHFF/FFFF/SFFH/HFFF/HFFF/HFGF`` one demonstration goes down five times from tile 2 into the goal (tile 22),
the other goes right three times from the start (tile 8) into the hole at tile 11; the optimal stitched path
(right, right, down x3) is 5 moves.

`StitchingGenerator` draws new tasks of that kind: a single start S and goal G; demonstration B walks a
shortest path from S to a crossing tile X and then into a hole; demonstration A starts at a frozen tile that is
not S along a shortest path to G that passes X, never touching S. Following B fails, A never starts at
or passes through S, and B's prefix to X followed by A's suffix from X reaches G.

Limits as for `MapGenerator`: height and width at most ``MAX_MAP_SIZE`` (32), ``min_hops`` at most ``h * w - 1``
of the largest map, and a generator that finds no task within a fixed budget of attempts (scaled by map area,
well under a second) raises `InvalidTaskError` saying why its attempts failed and which parameter to change.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Iterable

import numpy as np

from icrl_bench.envs.generator import RngLike, SizeRanges, as_rng, check_min_hops, check_range
from icrl_bench.envs.task import MOVES, Demonstration, InvalidTaskError, TaskSpec, check_integer, check_probability

PAPER_STITCHING_TASK = TaskSpec(
    rows=("HHFF", "FFFF", "SFFH", "HFFF", "HFFF", "HFGF"),
    demonstrations=(Demonstration(start=2, actions=(1, 1, 1, 1, 1)), Demonstration(start=8, actions=(2, 2, 2))),
)

# `sample` gives up after _ATTEMPT_TILES / (tiles of the largest map) failed attempts in a row, each a few BFS
# over the map: 2,000 attempts of the registered 4-6 x 4-6 maps (~0.3 s; one attempt in three succeeds, the
# longest run of failures in 3,000 attempts was 20), 70 of 32x32 (~0.5 s).
_ATTEMPT_TILES = 2000 * 36
# Why an attempt failed, and what to change when that is why every attempt failed.
_FAILURES = {
    "cut off": ("the start could not reach the goal", "lower p_hole"),
    "too close": ("the start was fewer than min_hops moves from the goal", "lower min_hops or allow larger maps"),
    "no crossing": ("no frozen tile lay on a path between the start and the goal", "lower p_hole"),
    "no hole": ("demonstration B could reach no hole", "raise p_hole"),
    "no demo start": ("demonstration A had no start", "lower p_hole or allow larger maps"),
    "too long": ("a demonstration was longer than max_steps", "raise max_steps"),
}


@functools.lru_cache(maxsize=None)
def _adjacency(nrow: int, ncol: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """For each tile of an `nrow` x `ncol` map, the (direction, tile) pairs of its in-bounds neighbours."""
    out = []
    for tile in range(nrow * ncol):
        r, c = divmod(tile, ncol)
        moves = ((d, r + dr, c + dc) for d, (dr, dc) in enumerate(MOVES))
        out.append(tuple((d, nr * ncol + nc) for d, nr, nc in moves if 0 <= nr < nrow and 0 <= nc < ncol))
    return tuple(out)


def _neighbours(tile: int, nrow: int, ncol: int) -> Iterable[tuple[int, int]]:
    """(direction, tile) pairs of the in-bounds neighbours of `tile`."""
    return _adjacency(nrow, ncol)[tile]


def _distances(target: int, allowed: set[int], nrow: int, ncol: int) -> dict[int, int]:
    """BFS distances to `target` over `allowed` tiles (target included)."""
    adjacency = _adjacency(nrow, ncol)
    dist = {target: 0}
    frontier, level = [target], 0
    while frontier:
        level += 1
        reached = []
        for t in frontier:
            for _, n in adjacency[t]:
                if n in allowed and n not in dist:
                    dist[n] = level
                    reached.append(n)
        frontier = reached
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
        object.__setattr__(self, "p_hole", check_probability("p_hole", self.p_hole))
        if not 0.0 < self.p_hole < 1.0:
            raise ValueError(
                f"p_hole must be above 0 and below 1 for stitching tasks (demonstration B ends in a hole, and holes "
                f"must leave a path), got {self.p_hole!r}"
            )
        if self.max_height * self.max_width < 6:
            raise ValueError("stitching maps need at least 6 tiles: raise height or width")
        object.__setattr__(self, "min_hops", check_min_hops(self.min_hops, self.max_height, self.max_width))
        object.__setattr__(self, "max_steps", check_integer("max_steps", self.max_steps))
        if self.max_steps < self.min_hops:
            raise ValueError(f"max_steps ({self.max_steps}) must be at least min_hops ({self.min_hops})")

    @property
    def max_attempts(self) -> int:
        """Failed attempts in a row after which `sample` gives up (fewer for larger maps, each costs more)."""
        return max(1, _ATTEMPT_TILES // (self.max_height * self.max_width))

    def sample(self, rng: RngLike = None) -> TaskSpec:
        """One stitching task; deterministic for an int seed or a Generator in a given state."""
        rng = as_rng(rng)
        failures = dict.fromkeys(_FAILURES, 0)
        for _ in range(self.max_attempts):
            task = self._attempt(rng)
            if isinstance(task, TaskSpec):
                return task
            failures[task] += 1
        found = [
            f"in {failures[key]:,} {why} ({fix})"
            for key, (why, fix) in sorted(_FAILURES.items(), key=lambda item: -failures[item[0]])
            if failures[key]
        ]
        raise InvalidTaskError(
            f"no stitching task in {self.max_attempts:,} attempts of {self}; these settings (almost) never give "
            "one: " + "; ".join(found)
        )

    def sample_many(self, n: int, rng: RngLike = None) -> list[TaskSpec]:
        """`n` tasks drawn one after another from the same generator state."""
        rng = as_rng(rng)
        return [self.sample(rng) for _ in range(n)]

    def _attempt(self, rng: np.random.Generator) -> TaskSpec | str:
        """A task, or the key in `_FAILURES` of why this attempt failed."""
        nrow = int(rng.integers(self.height[0], self.height[1] + 1))
        ncol = int(rng.integers(self.width[0], self.width[1] + 1))
        n = nrow * ncol
        start, goal = (int(t) for t in rng.choice(n, size=2, replace=False))
        holes = {t for t in np.flatnonzero(rng.random(n) < self.p_hole).tolist() if t not in (start, goal)}
        frozen = set(range(n)) - holes - {start, goal}
        to_goal = _distances(goal, frozen | {start, goal}, nrow, ncol)
        if start not in to_goal:
            return "cut off"
        if to_goal[start] < self.min_hops:
            return "too close"
        # Crossing tile X: frozen, reachable from S without passing G, and from which G is reachable avoiding S.
        to_goal_no_s = _distances(goal, frozen | {goal}, nrow, ncol)
        from_start = _distances(start, frozen | {start}, nrow, ncol)
        crossings = sorted(t for t in frozen if t in from_start and t in to_goal_no_s)
        if not crossings:
            return "no crossing"
        x = crossings[rng.integers(len(crossings))]
        # Demonstration B: S -> X, then X -> the nearest reachable hole (never through G).
        to_x = _distances(x, frozen | {start}, nrow, ncol)
        b_actions = _walk(start, to_x, nrow, ncol, rng)
        # A hole is as far from X (through frozen tiles) as its nearest frozen neighbour, plus one move.
        to_x_no_s = _distances(x, frozen, nrow, ncol)
        hole_distances = {}
        for h in sorted(holes):
            reached = [to_x_no_s[n] for _, n in _neighbours(h, nrow, ncol) if n in to_x_no_s]
            if reached:
                hole_distances[h] = min(reached) + 1
        if not hole_distances:
            return "no hole"
        best = min(hole_distances.values())
        nearest = [h for h, d in hole_distances.items() if d == best]
        hole = nearest[rng.integers(len(nearest))]
        b_actions += _walk(x, _distances(hole, frozen | {hole}, nrow, ncol), nrow, ncol, rng)
        # Demonstration A: a shortest path (never through S) from a frozen tile other than X to G, via X.
        a_starts = sorted(
            t for t in to_x_no_s if t != x and t in to_goal_no_s and to_x_no_s[t] + to_goal_no_s[x] == to_goal_no_s[t]
        )
        if not a_starts:
            return "no demo start"
        a_start = a_starts[rng.integers(len(a_starts))]
        a_actions = _walk(a_start, to_x_no_s, nrow, ncol, rng) + _walk(x, to_goal_no_s, nrow, ncol, rng)
        if max(len(a_actions), len(b_actions)) > self.max_steps:
            return "too long"
        rows = [["H" if t in holes else "F" for t in range(r * ncol, (r + 1) * ncol)] for r in range(nrow)]
        rows[start // ncol][start % ncol] = "S"
        rows[goal // ncol][goal % ncol] = "G"
        return TaskSpec(
            rows=tuple("".join(r) for r in rows),
            max_steps=self.max_steps,
            demonstrations=(Demonstration(a_start, tuple(a_actions)), Demonstration(start, tuple(b_actions))),
        )
