"""`TrialRecord`, `EpisodeRecord`: what a played trial leaves behind, and every table derived from them.

The records are the data format of the benchmark: the runner fills them, results.json and the parts files store
them (`TrialRecord.to_dict`), episodes.csv flattens them (`EPISODES_CSV_COLUMNS`, `episode_rows`) and the
leaderboard validator checks them field by field (`TRIAL_FIELDS`, `EPISODE_FIELDS`). The tables are built from
`dataclasses.fields`, so a field added to a record shows up in all of them.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from icrl_bench.protocol.suites import Suite


@dataclasses.dataclass
class EpisodeRecord:
    """One episode: enough to recompute every metric and to check it is possible."""

    success: int  # 1 if a goal was reached
    steps: int
    start: int  # start tile
    shortest: int  # shortest start-to-goal moves on that episode's map
    optimal: float  # success probability of the optimal (map-knowing) policy from that start
    truncated: bool
    forced_random: int = 0  # actions replaced by forced exploration
    invalid_actions: int = 0  # invalid actions replaced by random ones (on_invalid_action="random")


@dataclasses.dataclass
class TrialRecord:
    """One trial: its seeds, task ids and per-episode records (what results.json stores)."""

    suite: str
    trial: int
    env_seed: int
    agent_seed: int
    task_ids: list[str]
    episodes: list[EpisodeRecord]
    wall_time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of results.json and the parts files."""
        out = dict(vars(self))  # flat fields; faster than dataclasses.asdict's deep copy
        out["task_ids"] = list(self.task_ids)
        out["episodes"] = [dict(vars(e)) for e in self.episodes]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        """The record of a `to_dict` object (no checks: `leaderboard.validate` checks untrusted ones)."""
        data = dict(data)
        data["episodes"] = [EpisodeRecord(**e) for e in data["episodes"]]
        return cls(**data)


def _json_types(cls: type) -> dict[str, Any]:
    """Field name -> the type(s) its JSON value may have, in field order (a float may be written as an int)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        kind = typing.get_origin(hints[field.name]) or hints[field.name]  # list[str] -> list
        out[field.name] = (int, float) if kind is float else kind
    return out


EPISODE_FIELDS: dict[str, Any] = _json_types(EpisodeRecord)
TRIAL_FIELDS: dict[str, Any] = _json_types(TrialRecord)

# episodes.csv: one row per episode; the trial's identity, the episode's index and fields, its seeds and task.
EPISODES_CSV_COLUMNS: tuple[str, ...] = (
    "suite", "trial", "episode", *EPISODE_FIELDS, "env_seed", "agent_seed", "task_id"
)  # fmt: skip


def episode_rows(record: TrialRecord, suite: Suite) -> Iterator[list[Any]]:
    """The episodes.csv rows of one trial, in `EPISODES_CSV_COLUMNS` order (booleans as 0/1)."""
    for k, e in enumerate(record.episodes):
        values = [getattr(e, name) for name in EPISODE_FIELDS]
        task_id = record.task_ids[suite.task_index(k)]
        yield [record.suite, record.trial, k, *(int(v) if isinstance(v, bool) else v for v in values),
               record.env_seed, record.agent_seed, task_id]  # fmt: skip
