"""`MapGenerator`: the paper's distribution of Frozen Lake maps, seeded and batched.

Per map (Rentschler & Roberts 2025, see ``shared/PAPER.md``): height and width each uniform in their ranges;
each tile is S with probability ``p_start``, else G with ``p_goal``, else H with ``p_hole``, else F. A map is
kept only if it has at least one S and from *every* S a path that treats holes as walls reaches a G whose
distance is at least ``min_hops`` moves; otherwise it is redrawn.

Candidates are drawn in blocks (sizes 32, 64, ..., 4096, fewer for maps above 100 tiles) and checked with
array operations, so tens of thousands of maps come out per second. The blocks are a fixed sequence, so for the
same seed ``sample_many(k)`` is a prefix of ``sample_many(n)`` for k <= n, and ``sample(rng)`` equals
``sample_many(1, rng)[0]``.

Limits (so that impossible or hopeless settings fail in well under a second, never after minutes):
height and width are at most `MAX_MAP_SIZE` (32); ``min_hops`` is at most ``h * w - 1`` of the largest map (a
path visits each tile at most once); and a stream that finds no valid map within `_WORK_BUDGET` tile
operations (a fixed amount of array work, independent of the machine) raises `InvalidTaskError` saying which
rule rejected the candidates and which parameters to change.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np

from icrl_bench.envs.task import InvalidTaskError, TaskSpec, as_integer, check_integer, check_probability

_S, _F, _H, _G, _WALL = 0, 1, 2, 3, 4
_LETTERS = np.frombuffer(b"SFHG#", dtype=np.uint8)
_INF_INT = 10_000
_INF = np.int16(_INF_INT)
# The largest height and width of a generated map (and of a stitching map). Every registered id is at most
# 10x10; a block of 400 candidates of 32x32 takes 5-15 ms, so such maps are still served in milliseconds when
# the settings suit them (e.g. p_start = p_goal = 0.002), and the budget below covers 7,000-25,000 of them.
MAX_MAP_SIZE = 32
_FIRST_BLOCK, _LAST_BLOCK = 32, 4096
# A block holds at most this many tiles (4096 candidates of up to 10x10, the registered ids' blocks unchanged).
_BLOCK_TILES = 4096 * 100
# A stream gives up after this much array work without a valid map, counted in tile steps of the BFS: drawing a
# tile costs _DRAW_COST steps and each candidate _CANDIDATE_COST more (about what they take in time). The budget
# takes 0.2-0.5 s on one core, whatever the settings; it covers ~400,000 candidates of the paper's maps and
# ~190,000 of 8-10 x 8-10 (which accepts 1 in 200: a registered id fails with probability below 1e-400), and
# ~7,000 to ~25,000 candidates of 32x32.
_WORK_BUDGET = 2**29
_DRAW_COST, _CANDIDATE_COST = 16, 512

RngLike = np.random.Generator | int | None


def as_rng(rng: RngLike) -> np.random.Generator:
    """A numpy Generator from a Generator, an int seed or None (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def check_range(name: str, value: tuple[int, int]) -> tuple[int, int]:
    """`value` as a (low, high) pair of map sizes with 1 <= low <= high <= MAX_MAP_SIZE; ValueError naming `name`."""
    try:
        lo, hi = (as_integer(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of integers, got {value!r}") from None
    if not 1 <= lo <= hi:
        raise ValueError(f"{name} must satisfy 1 <= low <= high, got {value!r}")
    if hi > MAX_MAP_SIZE:
        raise ValueError(
            f"{name}={value!r} is too large: generated maps have at most {MAX_MAP_SIZE} rows and columns "
            f"(MAX_MAP_SIZE), so the largest feasible {name} is ({min(lo, MAX_MAP_SIZE)}, {MAX_MAP_SIZE})"
        )
    return lo, hi


def check_flag(name: str, value: object) -> bool:
    """`value` if it is a bool (Python or numpy); ValueError naming `name` otherwise (no truthiness)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_min_hops(min_hops: object, max_height: int, max_width: int) -> int:
    """`min_hops` as a positive int that a map of at most `max_height` x `max_width` tiles can satisfy."""
    return check_integer(
        "min_hops",
        min_hops,
        high=max_height * max_width - 1,
        why=f"no path on maps of at most {max_height}x{max_width} tiles is longer than {max_height * max_width - 1} "
        f"moves (it visits each tile at most once; height and width go up to {MAX_MAP_SIZE})",
    )


class TaskStream:
    """Valid tasks of a `MapGenerator` in candidate order, from blocks of 32, 64, ..., 4096 candidates."""

    def __init__(self, generator: MapGenerator, rng: np.random.Generator) -> None:
        self.generator, self.rng = generator, rng
        self.pending: deque[TaskSpec] = deque()
        self.block = _FIRST_BLOCK

    def __iter__(self) -> TaskStream:
        return self

    def __next__(self) -> TaskSpec:
        drawn, work = 0, 0  # candidates and tile operations since the last valid map
        rejected = np.zeros(3, dtype=np.int64)
        while not self.pending:
            tasks, block_rejected, block_work = self.generator._block_tasks(self.rng, self.block)
            self.pending.extend(tasks)
            drawn, work, rejected = drawn + self.block, work + block_work, rejected + block_rejected
            self.block = min(2 * self.block, self.generator._largest_block)
            if not self.pending and work >= _WORK_BUDGET:
                raise InvalidTaskError(self.generator._hopeless(drawn, rejected))
        return self.pending.popleft()


def prefill(streams: Sequence[Any]) -> None:
    """Give each empty `TaskStream` among `streams` its next block of tasks, checking the candidates of all of
    them in one batched validity test (the BFS), not stream by stream: the same tasks in the same order as each
    stream finds alone (each draws its own candidates from its own generator; a map's validity does not depend
    on the others in a batch). What makes resetting thousands of sub-envs at once cheap. A stream whose block
    holds no valid map simply draws on when it is next asked (its give-up budget counts from there)."""
    groups: dict[int, list[TaskStream]] = {}
    for stream in streams:
        stream = getattr(stream, "inner", stream)  # a stream that skips excluded maps wraps a TaskStream
        if isinstance(stream, TaskStream) and not stream.pending:
            groups.setdefault(id(stream.generator), []).append(stream)
    for group in groups.values():
        generator = group[0].generator
        if len({id(s) for s in group}) != len(group):
            raise ValueError("prefill got the same stream twice")
        draws = [generator._draw_block(s.rng, s.block) for s in group]
        tiles = np.concatenate([d[0] for d in draws])
        accepted, dists, _, _ = generator._accept(tiles)
        starts = np.cumsum([0] + [len(d[0]) for d in draws])
        for k, (stream, (own, heights, widths, perms)) in enumerate(zip(group, draws)):
            mine = (accepted >= starts[k]) & (accepted < starts[k + 1])
            stream.pending.extend(generator._tasks(accepted[mine] - starts[k], dists[mine], own, heights, widths, perms))
            stream.block = min(2 * stream.block, generator._largest_block)


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
            object.__setattr__(self, name, check_probability(name, getattr(self, name)))
        if self.p_start == 0.0 or self.p_goal == 0.0:
            raise ValueError("p_start and p_goal must be positive: every map needs a start and a goal")
        if self.p_start == 1.0:
            raise ValueError("p_start must be below 1: with p_start=1 every tile is a start and no map has a goal")
        if self.max_height * self.max_width < 2:
            raise ValueError("maps of at most 1x1 tiles have no room for a start and a goal: raise height or width")
        object.__setattr__(self, "min_hops", check_min_hops(self.min_hops, self.max_height, self.max_width))
        object.__setattr__(self, "permute_actions", check_flag("permute_actions", self.permute_actions))
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

    @property
    def _largest_block(self) -> int:
        """Candidates per block once the blocks stop doubling: 4096, fewer for maps above 100 tiles."""
        return min(_LAST_BLOCK, max(_FIRST_BLOCK, _BLOCK_TILES // (self.max_height * self.max_width)))

    def _hopeless(self, drawn: int, rejected: np.ndarray) -> str:
        """The error message of a stream that found no valid map: how many candidates each rule rejected, most
        first, and which parameters to change against it."""
        no_pair, too_close, cut_off = (int(n) for n in rejected)
        larger = (
            f", or allow larger maps (height and width up to {MAX_MAP_SIZE})"
            if max(self.max_height, self.max_width) < MAX_MAP_SIZE
            else ""
        )
        # Larger maps help min_hops only where it exceeds the corner-to-corner distance; else they add starts.
        far = larger if self.min_hops > self.max_height + self.max_width - 2 else ""
        reasons = [
            (no_pair, "had no start or no goal", "raise p_start or p_goal" + larger),
            (
                too_close,
                f"had a start fewer than min_hops={self.min_hops} moves from a goal",
                "lower min_hops, or lower p_start and p_goal for fewer starts and goals" + far,
            ),
            (cut_off, "had a start from which no path reaches a goal", "lower p_hole"),
        ]
        found = [f"{n:,} {what} ({fix})" for n, what, fix in sorted(reasons, key=lambda r: -r[0]) if n]
        return (
            f"no valid map in {drawn:,} candidates of {self}; these settings (almost) never give one: "
            + "; ".join(found)
        )

    def _block_tasks(self, rng: np.random.Generator, block: int) -> tuple[list[TaskSpec], np.ndarray, int]:
        """The valid tasks among `block` fresh candidates, in candidate order; the rejections per rule (no start
        or goal, a start too close to a goal, a start cut off from every goal) and the tile operations spent."""
        tiles, heights, widths, perms = self._draw_block(rng, block)
        accepted, dists, rejected, work = self._accept(tiles)
        return self._tasks(accepted, dists, tiles, heights, widths, perms), rejected, work

    def _tasks(self, accepted: np.ndarray, dists: np.ndarray, tiles: np.ndarray, heights: np.ndarray,
               widths: np.ndarray, perms: np.ndarray | None) -> list[TaskSpec]:  # fmt: skip
        """The tasks of the accepted candidates (indices into one block), with their goal-distance grids."""
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
        # A wall row and column after each map: the BFS then works on one flat array (see `_neighbours`).
        padded = np.full((n, H + 1, W + 1), _WALL, dtype=np.int8)
        padded[:, :H, :W] = tiles
        return padded, heights, widths, perms

    def _accept(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Indices of the valid candidates and their goal-distance grids; rejections per rule; tile operations.

        Cheap tests first: a start and a goal exist; no start within ``min_hops - 1`` moves of a goal
        (a few steps of BFS); only the survivors get the full BFS.
        """
        area = tiles[0].size
        flat = tiles.reshape(len(tiles), -1)
        idx = np.flatnonzero((flat == _S).any(axis=1) & (flat == _G).any(axis=1))
        paired = len(idx)
        near, grow_steps = _grow(tiles[idx] == _G, _passable(tiles[idx]), self.min_hops - 1)
        idx = idx[~(near & (tiles[idx] == _S)).any(axis=(1, 2))]
        dist, levels = _goal_distance_grid(tiles[idx])
        unreachable = ((dist == _INF) & (tiles[idx] == _S)).any(axis=(1, 2))
        rejected = np.array([len(tiles) - paired, paired - len(idx), int(unreachable.sum())])
        work = (_CANDIDATE_COST + _DRAW_COST * area) * len(tiles) + area * (paired * grow_steps + len(idx) * levels)
        return idx[~unreachable], dist[~unreachable], rejected, work


def _passable(tiles: np.ndarray) -> np.ndarray:
    return (tiles == _S) | (tiles == _F)


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """Tiles one move away from any tile of `mask` (batched over the first axis), as seen from inside a map.

    The maps end in a wall row and a wall column that `mask` never covers (walls are neither goals nor
    passable), so flat shifts by one tile and by one row never carry a tile of `mask` into another row or map;
    the padding tiles they mark are walls, which every caller masks out.
    """
    width = mask.shape[-1]
    flat = mask.reshape(-1)
    out = np.zeros_like(flat)
    out[1:] |= flat[:-1]
    out[:-1] |= flat[1:]
    out[width:] |= flat[:-width]
    out[:-width] |= flat[width:]
    return out.reshape(mask.shape)


def _grow(reached: np.ndarray, passable: np.ndarray, steps: int) -> tuple[np.ndarray, int]:
    """Tiles within `steps` moves of `reached` through passable tiles, and the steps taken (fewer once nothing
    new is reached)."""
    for step in range(steps):
        grown = reached | (_neighbours(reached) & passable)
        if np.array_equal(grown, reached):
            return reached, step + 1
        reached = grown
    return reached, steps


def _goal_distance_grid(tiles: np.ndarray) -> tuple[np.ndarray, int]:
    """Batched multi-source BFS: moves from each tile to the nearest G through S/F tiles (_INF if none), and the
    number of BFS steps taken."""
    frontier = tiles == _G
    dist = np.where(frontier, np.int16(0), _INF).astype(np.int16)
    unseen = _passable(tiles)
    level = 0
    while True:
        frontier = _neighbours(frontier) & unseen
        if not frontier.any():
            return dist, level + 1
        level += 1
        dist[frontier] = level
        unseen &= ~frontier
