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
import json
from functools import lru_cache
from hashlib import sha256
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from icrl_bench.envs.dynamics import FROZEN, GOAL, HOLE, compact_tables
from icrl_bench.envs.task import InvalidTaskError, TaskSpec, as_integer, check_integer, check_probability

# Tile codes of a candidate: how many of the thresholds of S, G and H its uniform reaches (see `_encode`);
# 4..7 are walls (outside the map, and the padding row and column).
_S, _G, _H, _F, _WALL = 0, 1, 2, 3, 4
_LETTERS = np.frombuffer(b"SGHF####", dtype=np.uint8)
_KIND_OF_CODE = np.array([FROZEN, GOAL, HOLE, FROZEN, FROZEN, FROZEN, FROZEN, FROZEN], dtype=np.int8)
_INF_INT = 10_000
_INF = np.int16(_INF_INT)
# The largest height and width of a generated map (and of a stitching map). Every registered id is at most
# 10x10; a block of 400 candidates of 32x32 takes 5-15 ms, so such maps are still served in milliseconds when
# the settings suit them (e.g. p_start = p_goal = 0.002), and the budget below covers 7,000-25,000 of them.
MAX_MAP_SIZE = 32
_FIRST_BLOCK, _LAST_BLOCK = 32, 4096
_BATCH_CANDIDATES = 16384  # candidates that `prefill` encodes and checks at once
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


@lru_cache(maxsize=64)
def _json_parts(max_steps: int, success_rate: float) -> tuple[bytes, bytes, bytes]:
    """The canonical JSON of a generated task (`TaskSpec.to_json`) around its permutation and its rows."""
    return (b'{"action_permutation":', f',"demonstrations":[],"max_steps":{max_steps},"rows":["'.encode(),
            f'"],"success_rate":{json.dumps(success_rate)}}}'.encode())  # fmt: skip


class ValidMaps:
    """Valid candidates as arrays, in candidate order, with what serving them needs, computed for all at once:
    transition tables (`dynamics.compact_tables`, one small int16 row each) and the bytes of their rows. `TaskBlock`s
    are slices of one `ValidMaps` (`prefill` makes one for many streams' blocks).

    Arrays, batch first: ``tiles`` (k, H + 1, W + 1) tile codes (`_S`, `_G`, `_H`, `_F`, walls >= `_WALL`),
    ``dists`` (k, H + 1, W + 1) goal distances, ``heights``, ``widths`` (k,), ``perms`` (k, 4) or None.
    """

    def __init__(self, generator: MapGenerator, grid: np.ndarray, accepted: np.ndarray, dists: np.ndarray,
                 heights: np.ndarray, widths: np.ndarray, perms: np.ndarray | None) -> None:  # fmt: skip
        """From `MapGenerator._accept`: the candidates' `grid` (batch last), the `accepted` indices into it and
        their `dists` (batch last); the candidates' `heights`, `widths` and `perms`."""
        self.generator = g = generator
        self.tiles = tiles = np.ascontiguousarray(np.take(grid, accepted, axis=2).transpose(2, 0, 1))
        self.dists = np.ascontiguousarray(dists.transpose(2, 0, 1))
        heights, widths = heights[accepted], widths[accepted]
        self.perms = None if perms is None else perms[accepted]
        self.heights, self.widths = heights.tolist(), widths.tolist()
        self.tables = block_tables(g, tiles, heights, widths, self.perms)
        # Every candidate's rows as the bytes 'SFF","FHG","...' (the middle of its JSON), padded with '#'
        # (stripped by `piece`): one gather for all instead of string work per task.
        k, H, W = len(tiles), g.max_height, g.max_width
        area = (H + 1) * (W + 1)
        letters = np.empty((k, area + 4), dtype=np.uint8)
        letters[:, :area] = _LETTERS[tiles.reshape(k, area)]
        letters[:, area:] = np.frombuffer(b'","#', dtype=np.uint8)
        joined = np.take_along_axis(letters, _piece_index(H, W)[heights * (W + 1) + widths], axis=1)
        self.joined, self.stride = joined.tobytes(), joined.shape[1]
        self.json = _json_parts(g.max_steps, g.success_rate)

    def piece(self, i: int) -> bytes:
        return self.joined[i * self.stride : (i + 1) * self.stride].translate(None, b"#")


class TaskBlock:
    """The valid candidates of one block of a stream, in candidate order: what a `TaskStream` serves one by one.

    ``task(j)`` builds the `TaskSpec` of candidate `j`; the vector env instead copies ``table(j)`` (its
    transition tables) and asks only for ``task_id(j)``, so a task that starts in a sub-env costs no Python
    object (issue 12: a new task every episode).
    """

    __slots__ = ("maps", "lo", "size")

    def __init__(self, maps: ValidMaps, lo: int, hi: int) -> None:
        self.maps, self.lo, self.size = maps, lo, hi - lo  # candidates lo..hi-1 of `maps`

    def __len__(self) -> int:
        return self.size

    def rows(self, j: int) -> tuple[str, ...]:
        """Candidate `j`'s map, top row first."""
        return tuple(self.maps.piece(self.lo + j).decode().split('","'))

    def permutation(self, j: int) -> tuple[int, int, int, int] | None:
        """Candidate `j`'s action permutation as `TaskSpec` stores it (None for none or the identity)."""
        if self.maps.perms is None:
            return None
        perm = tuple(self.maps.perms[self.lo + j].tolist())
        return None if perm == (0, 1, 2, 3) else perm

    def task_id(self, j: int) -> str:
        """``task(j).task_id`` without building the task: the same canonical JSON (`TaskSpec.to_json`), hashed."""
        head, middle, tail = self.maps.json
        perm = self.permutation(j)
        perm_json = b"null" if perm is None else ("[" + ",".join(map(str, perm)) + "]").encode()
        return sha256(b"".join((head, perm_json, middle, self.maps.piece(self.lo + j), tail))).hexdigest()[:16]

    def map_id(self, j: int) -> str:
        """``task(j).map_id`` without building the task."""
        return sha256(self.maps.piece(self.lo + j).replace(b'","', b"/")).hexdigest()[:16]

    def table(self, j: int) -> np.ndarray:
        """Candidate `j`'s transition tables, compact: its row of `dynamics.compact_tables`."""
        return self.maps.tables[self.lo + j]

    def task(self, j: int) -> TaskSpec:
        """The `TaskSpec` of candidate `j`."""
        m, i = self.maps, self.lo + j
        h, w = m.heights[i], m.widths[i]
        # Seed the task's cached BFS with the batched one (same numbers) so validation does not redo it.
        task = object.__new__(TaskSpec)
        dist = m.dists[i, :h, :w].ravel().tolist()
        task.__dict__["goal_distances"] = tuple(None if d == _INF_INT else d for d in dist)
        TaskSpec.__init__(task, self.rows(j), m.generator.success_rate, self.permutation(j), m.generator.max_steps)
        return task


class TaskStream:
    """Valid tasks of a `MapGenerator` in candidate order, from blocks of 32, 64, ..., 4096 candidates."""

    def __init__(self, generator: MapGenerator, rng: np.random.Generator) -> None:
        self.generator, self.rng = generator, rng
        self.block: TaskBlock | None = None  # the current block of valid candidates
        self.cursor = self.stop = 0  # the next candidate of `block` to serve; its size
        self.queued: TaskBlock | None = None  # the next block, drawn ahead by `prefill`
        self.size = _FIRST_BLOCK  # candidates in the next block to draw

    def __iter__(self) -> TaskStream:
        return self

    def __next__(self) -> TaskSpec:
        block, j = self.next_ref()
        return block.task(j)

    @property
    def empty(self) -> bool:
        """Whether the current block is used up (the next task needs a new block)."""
        return self.cursor >= self.stop

    def next_ref(self) -> tuple[TaskBlock, int]:
        """The next task as (block, index) - ``block.task(index)`` is what `next` returns - without building it."""
        j = self.cursor
        if j < self.stop:
            self.cursor = j + 1
            return self.block, j  # type: ignore[return-value]
        if self.queued is not None:
            block, self.queued = self.queued, None
            self._take(block)
            if self.stop:
                self.cursor = 1
                return block, 0
        drawn, work = 0, 0  # candidates and tile operations since the last valid map
        rejected = np.zeros(3, dtype=np.int64)
        while self.cursor >= self.stop:
            heights, widths, u, perms = self.generator._draw_uniforms(self.rng, self.size)
            grid = self.generator._encode(heights, widths, u)
            accepted, dists, block_rejected, block_work = self.generator._accept(grid)
            self._take(TaskBlock(ValidMaps(self.generator, grid, accepted, dists, heights, widths, perms), 0,
                                 len(accepted)))  # fmt: skip
            drawn, work, rejected = drawn + self.size, work + block_work, rejected + block_rejected
            self.size = min(2 * self.size, self.generator._largest_block)
            if self.cursor >= self.stop and work >= _WORK_BUDGET:
                raise InvalidTaskError(self.generator._hopeless(drawn, rejected))
        self.cursor = 1
        return self.block, 0  # type: ignore[return-value]

    def _take(self, block: TaskBlock) -> None:
        self.block, self.cursor, self.stop = block, 0, len(block)

    def _give(self, block: TaskBlock) -> None:
        """A block drawn by `prefill`: served now if the current one is used up, else queued after it."""
        if self.empty:
            self._take(block)
        else:
            self.queued = block
        self.size = min(2 * self.size, self.generator._largest_block)


def prefill(streams: Sequence[Any], rounds: int = 8, pool: Callable[[], Iterable[Any]] | None = None,
            ahead: int = 0) -> None:  # fmt: skip
    """Give each used-up `TaskStream` among `streams` its next block of tasks, encoding and checking the
    candidates of all of them at once (one batched validity test, the BFS), not stream by stream: the same tasks
    in the same order as each stream finds alone (each draws its own uniforms from its own generator; a map's
    validity does not depend on the others in a batch). What makes resetting thousands of sub-envs at once, or
    starting a new task in hundreds of them at every step, cheap.

    A stream whose block holds no valid map draws its next block in the next of at most `rounds` rounds; one
    still empty after them draws on alone when it is next asked (its give-up budget counts from there).

    Drawing ahead: when some stream needs a block, every stream of ``pool()`` with at most `ahead` tasks left
    (and none queued) draws its next block too, queued after its current one - so that the batches are large
    and rare. Only for streams whose rng nothing else draws from between now and their next block (a
    non-stationary schedule changes its tasks with the stream's rng: no drawing ahead there).
    """
    needy = [s for s in map(task_stream_of, streams) if s is not None and s.empty and s.queued is None]
    if not needy:
        return
    if pool is not None and ahead > 0:
        chosen = {id(s) for s in needy}
        for stream in map(task_stream_of, pool()):
            if (stream is not None and stream.queued is None and stream.stop - stream.cursor <= ahead
                    and id(stream) not in chosen):  # fmt: skip
                needy.append(stream)
                chosen.add(id(stream))
    groups: dict[int, list[TaskStream]] = {}
    for stream in needy:
        groups.setdefault(id(stream.generator), []).append(stream)
    for group in groups.values():
        if len({id(s) for s in group}) != len(group):
            raise ValueError("prefill got the same stream twice")
        # Batches of up to _BATCH_CANDIDATES candidates: large enough to amortise numpy's per-call cost, small
        # enough to stay in the CPU's cache (one batch of all the streams of 1,024 sub-envs ran 2x slower).
        batch: list[TaskStream] = []
        candidates = 0
        for stream in group:
            if batch and candidates + stream.size > _BATCH_CANDIDATES:
                _fill(batch, rounds)
                batch, candidates = [], 0
            batch.append(stream)
            candidates += stream.size
        _fill(batch, rounds)


def _fill(group: list[TaskStream], rounds: int) -> None:
    """`prefill` of one batch of streams of one generator."""
    generator = group[0].generator
    for _ in range(rounds):
        starts = np.cumsum([0] + [s.size for s in group])
        u = np.empty((starts[-1], generator.max_height, generator.max_width))  # every stream draws into its part
        draws = [generator._draw_uniforms(s.rng, s.size, u[a:b]) for s, a, b in zip(group, starts, starts[1:])]
        heights, widths = (np.concatenate([d[i] for d in draws]) for i in range(2))
        perms = np.concatenate([d[3] for d in draws]) if generator.permute_actions else None
        grid = generator._encode(heights, widths, u)
        accepted, dists, _, _ = generator._accept(grid)
        maps = ValidMaps(generator, grid, accepted, dists, heights, widths, perms)
        bounds = np.searchsorted(accepted, starts).tolist()  # stream k's valid maps: bounds[k]..bounds[k+1]-1
        for k, stream in enumerate(group):
            stream._give(TaskBlock(maps, bounds[k], bounds[k + 1]))
        group = [s for s in group if s.empty]  # a block without a valid map: the next one
        if not group or not len(accepted):  # none in the whole batch: settings that (almost) never give one
            break  # - each stream draws on alone, and the first to spend its budget says what to change


def task_stream_of(stream: Any) -> TaskStream | None:
    """The `TaskStream` behind a schedule's stream (None for a source without one, e.g. stitching)."""
    stream = getattr(stream, "inner", stream)  # a stream that skips excluded maps wraps a TaskStream
    return stream if isinstance(stream, TaskStream) else None


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

    def _draw_uniforms(
        self, rng: np.random.Generator, n: int, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """The random draws of `n` candidates, in the order that fixes every seed's maps: heights, widths, one
        uniform per tile of the largest map (n, H, W; written into `out` if given), action permutations."""
        heights = rng.integers(self.height[0], self.height[1] + 1, size=n)
        widths = rng.integers(self.width[0], self.width[1] + 1, size=n)
        u = rng.random((n, self.max_height, self.max_width)) if out is None else rng.random(out=out)
        perms = np.argsort(rng.random((n, 4)), axis=1) if self.permute_actions else None
        return heights, widths, u, perms

    def _encode(self, heights: np.ndarray, widths: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The candidates' tile codes on a grid of the largest map plus a wall row and column, batch last
        (H + 1, W + 1, n), so that every test of `_accept` reduces over leading axes (fast in numpy)."""
        H, W = self.max_height, self.max_width
        # One uniform per tile decides its letter: S, else G, else H, else F (the paper's sequential draws); the
        # code is the number of thresholds the uniform reaches: S 0, G 1, H 2, F 3.
        p_s = self.p_start
        p_g = p_s + (1 - p_s) * self.p_goal
        p_h = p_g + (1 - p_s) * (1 - self.p_goal) * self.p_hole
        code = (u >= p_s).view(np.uint8)
        code += (u >= p_g).view(np.uint8)
        code += (u >= p_h).view(np.uint8)
        grid = np.full((H + 1, W + 1, len(u)), _WALL, dtype=np.uint8)
        grid[:H, :W] = code.transpose(1, 2, 0)
        outside = (np.arange(H)[:, None, None] >= heights) | (np.arange(W)[None, :, None] >= widths)
        grid[:H, :W] |= outside.view(np.uint8) << 2  # a wall code (4..7) outside each candidate's own size
        return grid

    def _accept(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Indices of the valid candidates and their goal-distance grids (batch last); rejections per rule; tile
        operations.

        Cheap tests first: a start and a goal exist; no start within ``min_hops - 1`` moves of a goal
        (a few steps of BFS); only the survivors get the full BFS.
        """
        area, n = grid.shape[0] * grid.shape[1], grid.shape[2]
        flat = grid.reshape(area, n)
        idx = np.flatnonzero((flat == _S).any(axis=0) & (flat == _G).any(axis=0))
        paired = len(idx)
        tiles = np.take(grid, idx, axis=2)  # C order (plain fancy indexing of the last axis is not: slow below)
        near, grow_steps = _grow(tiles == _G, _passable(tiles), self.min_hops - 1)
        far = ~(near & (tiles == _S)).reshape(area, len(idx)).any(axis=0)
        idx, tiles = idx[far], np.compress(far, tiles, axis=2)
        dist, levels = _goal_distance_grid(tiles)
        unreachable = ((dist == _INF) & (tiles == _S)).reshape(area, len(idx)).any(axis=0)
        rejected = np.array([n - paired, paired - len(idx), int(unreachable.sum())])
        work = (_CANDIDATE_COST + _DRAW_COST * area) * n + area * (paired * grow_steps + len(idx) * levels)
        return idx[~unreachable], np.compress(~unreachable, dist, axis=2), rejected, work


def block_tables(generator: MapGenerator, tiles: np.ndarray, heights: Sequence[int], widths: Sequence[int],
                 perms: np.ndarray | None) -> np.ndarray:  # fmt: skip
    """`dynamics.compact_tables` of candidates (`tiles` batch first, as in `TaskBlock`), their tiles numbered
    ``row * width + col`` as in a task."""
    H, W = generator.max_height, generator.max_width
    heights, widths = np.asarray(heights, dtype=np.int64), np.asarray(widths, dtype=np.int64)
    # Tile t of a map w wide lies at row t // w, column t % w of its grid (past the map: the wall corner).
    at = _grid_index(H, W)[heights * (W + 1) + widths]
    codes = np.take_along_axis(tiles.reshape(len(tiles), (H + 1) * (W + 1)), at, axis=1)
    return compact_tables(_KIND_OF_CODE[codes], codes == _S, heights, widths, perms)


@lru_cache(maxsize=16)
def _piece_index(max_height: int, max_width: int) -> np.ndarray:
    """Row ``h * (max_width + 1) + w``: which byte of a candidate's letters (its flattened grid, then '","#')
    each byte of its piece is for an h x w map - the rows joined by '","', then '#' to a fixed length."""
    area = (max_height + 1) * (max_width + 1)
    length = max_height * max_width + 3 * (max_height - 1)
    out = np.full(((max_height + 1) * (max_width + 1), length), area + 3)
    for h in range(1, max_height + 1):
        for w in range(1, max_width + 1):
            index: list[int] = []
            for r in range(h):
                index += [r * (max_width + 1) + c for c in range(w)] + ([area, area + 1, area + 2] if r < h - 1 else [])
            out[h * (max_width + 1) + w, : len(index)] = index
    return out


@lru_cache(maxsize=16)
def _grid_index(max_height: int, max_width: int) -> np.ndarray:
    """Row ``h * (max_width + 1) + w``: where tile t of an h x w map lies in a candidate's flattened
    (max_height + 1) x (max_width + 1) grid, for t < max_height * max_width (the wall corner past the map)."""
    t = np.arange(max_height * max_width)
    out = np.full(((max_height + 1) * (max_width + 1), len(t)), max_height * (max_width + 1) + max_width)
    for h in range(1, max_height + 1):
        for w in range(1, max_width + 1):
            inside = t < h * w
            out[h * (max_width + 1) + w, inside] = (t // w * (max_width + 1) + t % w)[inside]
    return out


def _passable(tiles: np.ndarray) -> np.ndarray:
    return (tiles == _S) | (tiles == _F)


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """Tiles one move away from any tile of `mask` (H + 1, W + 1, batch), as seen from inside a map.

    Each map ends in a wall row and a wall column that `mask` never covers (walls are neither goals nor
    passable), so shifts by one tile and by one row of the flattened grid never carry a tile of `mask` into
    another row; the padding tiles they mark are walls, which every caller masks out. Maps never mix: each is a
    column of the batch-last array.
    """
    width = mask.shape[1]
    flat = mask.reshape(mask.shape[0] * width, mask.shape[2])
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
