"""`MapGenerator`: the paper's distribution of Frozen Lake maps, seeded and batched.

Per map (Rentschler & Roberts 2025, see ``shared/PAPER.md``): height and width each uniform in their ranges;
each tile is S with probability ``p_start``, else G with ``p_goal``, else H with ``p_hole``, else F. A map is
kept only if it has at least one S and from *every* S a path that treats holes as walls reaches a G whose
distance is at least ``min_hops`` moves; otherwise it is redrawn.

Candidates are drawn in blocks (sizes 32, 64, ..., 4096) and checked with array operations, so tens of
thousands of maps come out per second. The blocks are a fixed sequence, so for the same seed ``sample_many(k)``
is a prefix of ``sample_many(n)`` for k <= n, and ``sample(rng)`` equals ``sample_many(1, rng)[0]``.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np

from icrl_bench.envs.task import InvalidTaskError, TaskSpec, as_integer

_S, _F, _H, _G, _WALL = 0, 1, 2, 3, 4
_LETTERS = np.frombuffer(b"SFHG#", dtype=np.uint8)
_INF_INT = 10_000
_INF = np.int16(_INF_INT)
_FIRST_BLOCK, _LAST_BLOCK = 32, 4096
_MAX_CANDIDATES = 2_000_000

RngLike = np.random.Generator | int | None


def as_rng(rng: RngLike) -> np.random.Generator:
    """A numpy Generator from a Generator, an int seed or None (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def check_range(name: str, value: tuple[int, int]) -> tuple[int, int]:
    """`value` as a (low, high) pair of ints with 1 <= low <= high; ValueError naming `name` otherwise."""
    try:
        lo, hi = (as_integer(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of integers, got {value!r}") from None
    if not 1 <= lo <= hi:
        raise ValueError(f"{name} must satisfy 1 <= low <= high, got {value!r}")
    return lo, hi


class TaskStream:
    """Valid tasks of a `MapGenerator` in candidate order, from blocks of 32, 64, ..., 4096 candidates."""

    def __init__(self, generator: MapGenerator, rng: np.random.Generator) -> None:
        self.generator, self.rng = generator, rng
        self.pending: deque[TaskSpec] = deque()
        self.block = _FIRST_BLOCK

    def __iter__(self) -> TaskStream:
        return self

    def __next__(self) -> TaskSpec:
        drawn = 0  # candidates since the last valid one
        while not self.pending:
            self.pending.extend(self.generator._block_tasks(self.rng, self.block))
            drawn += self.block
            self.block = min(2 * self.block, _LAST_BLOCK)
            if not self.pending and drawn >= _MAX_CANDIDATES:
                raise InvalidTaskError(
                    f"no valid map in {drawn:,} candidates of {self.generator}: loosen min_hops, lower p_hole "
                    "or allow larger maps"
                )
        return self.pending.popleft()


class SizeRanges:
    """Mixin for sources with `height` and `width` (low, high) ranges: the largest map they draw."""

    height: tuple[int, int]
    width: tuple[int, int]

    @property
    def max_height(self) -> int:
        return self.height[1]

    @property
    def max_width(self) -> int:
        return self.width[1]


@dataclasses.dataclass(frozen=True)
class MapGenerator(SizeRanges):
    """A seeded sampler of valid Frozen Lake tasks from the paper's map distribution.

    Args:
        height: (low, high) number of rows, both inclusive. The paper's in-distribution maps use (3, 5),
            its out-of-distribution maps (6, 7).
        width: (low, high) number of columns, both inclusive.
        p_start, p_goal, p_hole: per-tile probabilities of S, then G among the rest, then H among the rest.
        min_hops: every start's nearest reachable goal is at least this many moves away.
        success_rate: Gymnasium's slip model, copied into every task (1.0 = not slippery).
        permute_actions: give each task a uniformly random action permutation (identity included).
        max_steps: step limit copied into every task.
    """

    height: tuple[int, int] = (3, 5)
    width: tuple[int, int] = (3, 5)
    p_start: float = 0.1
    p_goal: float = 0.1
    p_hole: float = 0.2
    min_hops: int = 4
    success_rate: float = 1.0
    permute_actions: bool = False
    max_steps: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "height", check_range("height", self.height))
        object.__setattr__(self, "width", check_range("width", self.width))
        for name in ("p_start", "p_goal", "p_hole"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
        if self.p_start == 0.0 or self.p_goal == 0.0:
            raise ValueError("p_start and p_goal must be positive: every map needs a start and a goal")
        try:
            object.__setattr__(self, "min_hops", as_integer(self.min_hops))
        except TypeError:
            raise ValueError(f"min_hops must be a positive integer, got {self.min_hops!r}") from None
        if self.min_hops < 1:
            raise ValueError(f"min_hops must be a positive integer, got {self.min_hops!r}")
        # Fail here, not inside a sampling loop, for dynamics the tasks would reject.
        probe = TaskSpec(rows=("SG",), success_rate=self.success_rate, max_steps=self.max_steps)
        object.__setattr__(self, "success_rate", probe.success_rate)
        object.__setattr__(self, "max_steps", probe.max_steps)

    def sample(self, rng: RngLike = None) -> TaskSpec:
        """One task; deterministic for an int seed or a Generator in a given state."""
        return next(self.stream(rng))

    def sample_many(self, n: int, rng: RngLike = None) -> list[TaskSpec]:
        """`n` tasks (repeats possible, as in the paper); deterministic for an int seed."""
        stream = self.stream(rng)
        return [next(stream) for _ in range(max(n, 0))]

    def stream(self, rng: RngLike = None) -> TaskStream:
        """An endless, picklable iterator of tasks: the sequence `sample_many` takes its prefixes from."""
        return TaskStream(self, as_rng(rng))

    def _block_tasks(self, rng: np.random.Generator, block: int) -> list[TaskSpec]:
        """The valid tasks among `block` fresh candidates, in candidate order."""
        tiles, heights, widths, perms = self._draw_block(rng, block)
        accepted, dists = self._accept(tiles)
        out = []
        for b, dist in zip(accepted, dists):
            h, w = int(heights[b]), int(widths[b])
            letters = _LETTERS[tiles[b, :h, :w]]
            rows = tuple(letters[r].tobytes().decode() for r in range(h))
            perm = tuple(int(a) for a in perms[b]) if perms is not None else None
            # Seed the task's cached BFS with the batched one (same numbers) so validation does not redo it.
            task = object.__new__(TaskSpec)
            task.__dict__["goal_distances"] = tuple(None if d == _INF_INT else d for d in dist[:h, :w].ravel().tolist())
            TaskSpec.__init__(task, rows, self.success_rate, perm, self.max_steps)
            out.append(task)
        return out

    def _draw_block(
        self, rng: np.random.Generator, n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        H, W = self.max_height, self.max_width
        heights = rng.integers(self.height[0], self.height[1] + 1, size=n)
        widths = rng.integers(self.width[0], self.width[1] + 1, size=n)
        u = rng.random((n, H, W))
        perms = np.argsort(rng.random((n, 4)), axis=1) if self.permute_actions else None
        # One uniform per tile decides its letter: S, else G, else H, else F (the paper's sequential draws).
        p_s = self.p_start
        p_g = p_s + (1 - p_s) * self.p_goal
        p_h = p_g + (1 - p_s) * (1 - self.p_goal) * self.p_hole
        above = (u >= p_s).view(np.int8) + (u >= p_g).view(np.int8) + (u >= p_h).view(np.int8)
        tiles = np.array([_S, _G, _H, _F], dtype=np.int8)[above]
        inside = (np.arange(H)[None, :, None] < heights[:, None, None]) & (
            np.arange(W)[None, None, :] < widths[:, None, None]
        )
        tiles[~inside] = _WALL
        return tiles, heights, widths, perms

    def _accept(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the valid candidates and their goal-distance grids.

        Cheap tests first: a start and a goal exist; no start within ``min_hops - 1`` moves of a goal
        (a few steps of BFS); only the survivors get the full BFS.
        """
        flat = tiles.reshape(len(tiles), -1)
        idx = np.flatnonzero((flat == _S).any(axis=1) & (flat == _G).any(axis=1))
        near = _grow(tiles[idx] == _G, _passable(tiles[idx]), self.min_hops - 1)
        idx = idx[~(near & (tiles[idx] == _S)).any(axis=(1, 2))]
        dist = _goal_distance_grid(tiles[idx])
        unreachable = ((dist == _INF) & (tiles[idx] == _S)).any(axis=(1, 2))
        return idx[~unreachable], dist[~unreachable]


def _passable(tiles: np.ndarray) -> np.ndarray:
    return (tiles == _S) | (tiles == _F)


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """Tiles one move away from any tile of `mask` (batched over the first axis)."""
    out = np.zeros_like(mask)
    out[:, 1:, :] |= mask[:, :-1, :]
    out[:, :-1, :] |= mask[:, 1:, :]
    out[:, :, 1:] |= mask[:, :, :-1]
    out[:, :, :-1] |= mask[:, :, 1:]
    return out


def _grow(reached: np.ndarray, passable: np.ndarray, steps: int) -> np.ndarray:
    """Tiles within `steps` moves of `reached` through passable tiles."""
    for _ in range(steps):
        reached = reached | (_neighbours(reached) & passable)
    return reached


def _goal_distance_grid(tiles: np.ndarray) -> np.ndarray:
    """Batched multi-source BFS: moves from each tile to the nearest G through S/F tiles (_INF if none)."""
    frontier = tiles == _G
    dist = np.where(frontier, np.int16(0), _INF).astype(np.int16)
    unseen = _passable(tiles)
    level = 0
    while True:
        frontier = _neighbours(frontier) & unseen
        if not frontier.any():
            return dist
        level += 1
        dist[frontier] = level
        unseen &= ~frontier
