"""`TaskSpec`: one Frozen Lake task (map, dynamics, step limit, demonstrations), immutable and hashable.

A task is everything that defines the environment an agent faces in a trial, and nothing about the agent.
Its `task_id` is a content hash: the same task has the same id on every machine and Python version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
import operator
from collections import deque
from functools import cached_property
from typing import Any, NamedTuple, Sequence

LEFT, DOWN, RIGHT, UP = 0, 1, 2, 3
ACTION_NAMES = ("left", "down", "right", "up")
TILES = "SFHG"
_TILE_SET = frozenset(TILES)
# Row and column change of each move direction, in Gymnasium's action order.
MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))


class InvalidTaskError(ValueError):
    """A task (map, dynamics or demonstration) that cannot be played; the message says what to fix."""


class Transition(NamedTuple):
    """One step as the agent sees it."""

    obs: int
    action: int
    reward: float
    next_obs: int
    terminated: bool
    truncated: bool


@dataclasses.dataclass(frozen=True)
class Demonstration:
    """An action sequence played from tile `start` (any non-terminal tile, not only an S) before the trial.

    Its transitions follow from the task's deterministic dynamics (`TaskSpec.rollout`), so tasks with
    demonstrations must not be slippery.
    """

    start: int
    actions: tuple[int, ...]

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "actions", tuple(as_integer(a) for a in self.actions))
            object.__setattr__(self, "start", as_integer(self.start))
        except TypeError as e:
            raise InvalidTaskError(f"a demonstration needs an integer start tile and integer actions: {e}") from None


def as_integer(value: Any) -> int:
    """`value` as an int if it is an integer (Python or numpy, not bool); TypeError otherwise (no truncation)."""
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is a bool, not an integer")
    return operator.index(value)


# Argument checks, one function per rule; `error` is the exception type the caller raises (ValueError for
# constructor arguments, InvalidTaskError for task fields). Wrong types are errors, never coerced.


def check_integer(
    name: str, value: Any, high: int | None = None, why: str = "", error: type[ValueError] = ValueError
) -> int:
    """`value` as an int in [1, high] (Python or numpy integer, never a bool, float or string).

    The message names `name`; above `high` it says why (`why`) and names `high` as the largest feasible value.
    """
    try:
        number = as_integer(value)
    except TypeError:
        number = 0
    if number < 1:
        raise error(f"{name} must be a positive integer, got {value!r}")
    if high is not None and number > high:
        raise error(f"{name}={number} is impossible: {why}, so the largest feasible {name} is {high}")
    return number


def check_probability(name: str, value: Any, error: type[ValueError] = ValueError) -> float:
    """`value` as a float in [0, 1] (a real number, never a bool or a string); `error` naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise error(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _as_rows(rows: str | Sequence[str]) -> tuple[str, ...]:
    """The rows of a map string (rows separated by one ``/`` or by whitespace) or of a sequence of row strings."""
    if isinstance(rows, str):
        parts = [p for chunk in rows.split("/") for p in (chunk.split() or [""])] if rows.strip() else []
    elif isinstance(rows, (list, tuple)):
        parts = list(rows)
    else:
        raise InvalidTaskError(f"rows must be a string like 'SFF/FHG' or a sequence of row strings, got {rows!r}")
    for i, row in enumerate(parts):
        if not isinstance(row, str):
            raise InvalidTaskError(f"row {i} is {row!r}, not a string of S/F/H/G letters")
        if not row and parts != [""]:
            fix = "separate rows by a single '/'" if isinstance(rows, str) else "remove it"
            raise InvalidTaskError(f"the map {rows!r} has an empty row {i} (counting from 0): {fix}")
    return tuple(parts)


def goal_distances(rows: Sequence[str], target: str = "G") -> tuple[int | None, ...]:
    """Fewest moves from each tile to the nearest `target` tile (a goal by default), walking only on S and F
    tiles (so holes and goals act as walls on the way); None where none is reachable."""
    nrow, ncol = len(rows), len(rows[0])
    dist: list[int | None] = [None] * (nrow * ncol)
    queue: deque[tuple[int, int]] = deque()
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            if tile == target:
                dist[r * ncol + c] = 0
                queue.append((r, c))
    while queue:
        r, c = queue.popleft()
        d = dist[r * ncol + c]
        assert d is not None
        for dr, dc in MOVES:
            nr, nc = r + dr, c + dc
            if 0 <= nr < nrow and 0 <= nc < ncol and dist[nr * ncol + nc] is None and rows[nr][nc] in "SF":
                dist[nr * ncol + nc] = d + 1
                queue.append((nr, nc))
    return tuple(dist)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """An immutable, hashable, JSON-serialisable Frozen Lake task.

    Args:
        rows: the map, top row first, as a sequence of equal-length strings or one string with rows separated
            by ``/`` or whitespace. Letters: ``S`` start (several allowed, one drawn uniformly per episode),
            ``F`` frozen, ``H`` hole, ``G`` goal (several allowed).
        success_rate: probability of moving in the intended direction, as Gymnasium's ``success_rate``; the
            rest splits equally between the two perpendicular directions. 1.0 means not slippery.
        action_permutation: if set, action ``a`` moves in direction ``action_permutation[a]``.
        max_steps: the episode is truncated after this many steps (Gymnasium's FrozenLake-v1 uses 100).
        demonstrations: trajectories shown to the agent before its first action (stitching tasks).

    Raises:
        InvalidTaskError: with a message naming the problem, for ragged rows, unknown letters, no start, a start
            from which no goal can be reached, or invalid dynamics or demonstrations.
    """

    rows: tuple[str, ...]
    success_rate: float = 1.0
    action_permutation: tuple[int, int, int, int] | None = None
    max_steps: int = 100
    demonstrations: tuple[Demonstration, ...] = ()

    def __post_init__(self) -> None:
        rows = _as_rows(self.rows)
        object.__setattr__(self, "rows", rows)
        if not rows or not rows[0]:
            raise InvalidTaskError("the map is empty: give at least one row of S/F/H/G letters")
        for r, row in enumerate(rows):
            if len(row) != len(rows[0]):
                raise InvalidTaskError(
                    f"row {r} ({row!r}) has {len(row)} tiles but row 0 ({rows[0]!r}) has {len(rows[0])}: "
                    "every row must have the same length"
                )
            if not set(row) <= _TILE_SET:
                c, tile = next((c, t) for c, t in enumerate(row) if t not in TILES)
                raise InvalidTaskError(
                    f"unknown tile {tile!r} at row {r}, column {c}: use S (start), F (frozen), H (hole) or G (goal)"
                )
        starts = self.starts
        if not starts:
            raise InvalidTaskError("the map has no start tile: put at least one 'S' on it")
        if not self.goals:
            raise InvalidTaskError("the map has no goal tile: put at least one 'G' on it")
        dist = self.goal_distances
        for s in starts:
            if dist[s] is None:
                r, c = divmod(s, self.ncol)
                raise InvalidTaskError(
                    f"the start at row {r}, column {c} (tile {s}) cannot reach any goal: holes block every path; "
                    "remove a hole or move a goal"
                )
        self._validate_dynamics()
        self._validate_demonstrations()

    def _validate_dynamics(self) -> None:
        object.__setattr__(self, "success_rate", check_probability("success_rate", self.success_rate, InvalidTaskError))
        if self.action_permutation is not None:
            try:
                perm = tuple(as_integer(a) for a in self.action_permutation)
            except (TypeError, ValueError):
                perm = ()
            if sorted(perm) != [0, 1, 2, 3]:
                raise InvalidTaskError(
                    f"action_permutation must be a permutation of (0, 1, 2, 3), got {self.action_permutation!r}"
                )
            # The identity is no permutation: one task, one id.
            object.__setattr__(self, "action_permutation", None if perm == (0, 1, 2, 3) else perm)
        object.__setattr__(self, "max_steps", check_integer("max_steps", self.max_steps, error=InvalidTaskError))

    def _validate_demonstrations(self) -> None:
        try:
            demos = tuple(d if isinstance(d, Demonstration) else Demonstration(**d) for d in self.demonstrations)
        except TypeError as e:
            raise InvalidTaskError(f"demonstrations must be Demonstration(start, actions) objects: {e}") from None
        object.__setattr__(self, "demonstrations", demos)
        if demos and self.success_rate != 1.0:
            raise InvalidTaskError("demonstrations need deterministic dynamics: set success_rate=1.0")
        for i, demo in enumerate(demos):
            if not 0 <= demo.start < self.n_tiles or self.tile(demo.start) in "HG":
                raise InvalidTaskError(
                    f"demonstration {i} starts at tile {demo.start}, which is not a frozen or start tile of this "
                    f"{self.nrow}x{self.ncol} map"
                )
            if not demo.actions:
                raise InvalidTaskError(f"demonstration {i} has no actions")
            if len(demo.actions) > self.max_steps:
                raise InvalidTaskError(
                    f"demonstration {i} has {len(demo.actions)} actions, more than max_steps={self.max_steps}"
                )
            if any(a not in (0, 1, 2, 3) for a in demo.actions):
                raise InvalidTaskError(f"demonstration {i} has an action outside 0..3: {demo.actions}")
            pos = demo.start
            for step, a in enumerate(demo.actions):
                if self.tile(pos) in "HG":
                    raise InvalidTaskError(
                        f"demonstration {i} goes on after the episode ended at tile {pos} (step {step}): cut it there"
                    )
                pos = self.move(pos, self.direction(a))

    # ----------------------------------------------------------------- geometry
    @property
    def nrow(self) -> int:
        return len(self.rows)

    @property
    def ncol(self) -> int:
        return len(self.rows[0])

    @property
    def n_tiles(self) -> int:
        return self.nrow * self.ncol

    def tile(self, index: int) -> str:
        """The letter at tile `index` (``row * ncol + col``)."""
        r, c = divmod(index, self.ncol)
        return self.rows[r][c]

    def _tiles_of(self, letter: str) -> tuple[int, ...]:
        flat = "".join(self.rows)
        return tuple(i for i in range(len(flat)) if flat[i] == letter) if letter in flat else ()

    @cached_property
    def starts(self) -> tuple[int, ...]:
        """Tile indices of the S tiles, ascending."""
        return self._tiles_of("S")

    @cached_property
    def goals(self) -> tuple[int, ...]:
        """Tile indices of the G tiles, ascending."""
        return self._tiles_of("G")

    @cached_property
    def holes(self) -> tuple[int, ...]:
        """Tile indices of the H tiles, ascending."""
        return self._tiles_of("H")

    @cached_property
    def goal_distances(self) -> tuple[int | None, ...]:
        """Fewest moves from each tile to the nearest goal (None if unreachable), holes acting as walls."""
        return goal_distances(self.rows)

    @cached_property
    def start_distances(self) -> tuple[int, ...]:
        """Shortest start-to-goal path length (moves) from each start, in the order of `starts`."""
        return tuple(self.goal_distances[s] for s in self.starts)  # type: ignore[misc]

    def direction(self, action: int) -> int:
        """The move direction of an agent action, after the task's action permutation."""
        return action if self.action_permutation is None else self.action_permutation[action]

    def move(self, index: int, direction: int) -> int:
        """The tile reached by moving from `index` in `direction` (0=left 1=down 2=right 3=up); walls keep you in place."""
        r, c = divmod(index, self.ncol)
        dr, dc = MOVES[direction]
        nr, nc = min(max(r + dr, 0), self.nrow - 1), min(max(c + dc, 0), self.ncol - 1)
        return nr * self.ncol + nc

    def rollout(self, demo: Demonstration) -> tuple[Transition, ...]:
        """The transitions of a demonstration under this task's (deterministic) dynamics."""
        out = []
        pos = demo.start
        for step, a in enumerate(demo.actions, start=1):
            nxt = self.move(pos, self.direction(a))
            letter = self.tile(nxt)
            out.append(
                Transition(pos, a, 1.0 if letter == "G" else 0.0, nxt, letter in "HG", step >= self.max_steps)
            )
            pos = nxt
        return tuple(out)

    # ----------------------------------------------------------- identity / IO
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `TaskSpec.from_dict` inverts it."""
        return {
            "rows": list(self.rows),
            "success_rate": self.success_rate,
            "action_permutation": None if self.action_permutation is None else list(self.action_permutation),
            "max_steps": self.max_steps,
            "demonstrations": [{"start": d.start, "actions": list(d.actions)} for d in self.demonstrations],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskSpec:
        """Build a task from `to_dict` output; unknown keys are an error (they would change nothing silently)."""
        if not isinstance(data, dict):
            raise InvalidTaskError(f"a task must be a JSON object, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise InvalidTaskError(f"unknown task field(s) {unknown}; allowed: {sorted(fields)}")
        if "rows" not in data:
            raise InvalidTaskError("a task needs 'rows' (the map)")
        kwargs = dict(data)
        try:
            kwargs["demonstrations"] = tuple(
                Demonstration(start=d["start"], actions=tuple(d["actions"])) for d in kwargs.get("demonstrations", ())
            )
            return cls(**kwargs)
        except (KeyError, TypeError) as e:
            raise InvalidTaskError(f"malformed task {data!r}: {type(e).__name__} {e}") from None

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): the bytes the task id hashes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TaskSpec:
        """Inverse of `to_json`."""
        return cls.from_dict(json.loads(text))

    @cached_property
    def task_id(self) -> str:
        """Stable content hash of the whole task (16 hex digits of SHA-256 over `to_json`)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @cached_property
    def map_id(self) -> str:
        """Stable content hash of the map alone, to prove train and test maps disjoint."""
        return hashlib.sha256("/".join(self.rows).encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> TaskSpec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        return "/".join(self.rows)
