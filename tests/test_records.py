"""The record types are the one home of the data format: results.json, episodes.csv and the validator follow them."""

import csv
import dataclasses
import json

from icrl_bench.agents import AgentSpec
from icrl_bench.protocol import evaluate
from icrl_bench.protocol.records import (
    EPISODE_FIELDS,
    EPISODES_CSV_COLUMNS,
    TRIAL_FIELDS,
    EpisodeRecord,
    TrialRecord,
)
from icrl_bench.protocol.suites import SUITES


def test_episodes_csv_header_is_the_record_fields(tmp_path):
    episode_fields = [f.name for f in dataclasses.fields(EpisodeRecord)]
    trial_fields = {f.name for f in dataclasses.fields(TrialRecord)}
    assert EPISODES_CSV_COLUMNS == ("suite", "trial", "episode", *episode_fields, "env_seed", "agent_seed", "task_id")
    assert set(EPISODES_CSV_COLUMNS) - set(episode_fields) - trial_fields == {"episode", "task_id"}

    evaluate(AgentSpec("qlearning"), ["nonstationary"], tmp_path, trials=2, seed=1, progress=False)
    with open(tmp_path / "episodes.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == EPISODES_CSV_COLUMNS
    records = json.loads((tmp_path / "results.json").read_text())["records"]["nonstationary"]
    assert len(rows) == 1 + 2 * 60
    for row in rows[1:]:
        line = dict(zip(EPISODES_CSV_COLUMNS, row))
        record = records[int(line["trial"])]
        episode = record["episodes"][int(line["episode"])]
        written = [str(int(v) if isinstance(v, bool) else v) for v in episode.values()]  # booleans as 0/1
        assert [line[name] for name in episode_fields] == written
        assert line["task_id"] == record["task_ids"][int(line["episode"]) >= 30]  # the second map from episode 31 on


def test_validator_field_tables_are_the_record_fields():
    from icrl_bench.leaderboard import validate

    assert validate.EPISODE_FIELDS is EPISODE_FIELDS and validate.TRIAL_FIELDS is TRIAL_FIELDS
    assert EPISODE_FIELDS == {
        "success": int, "steps": int, "start": int, "shortest": int, "optimal": (int, float), "truncated": bool,
        "forced_random": int, "invalid_actions": int,
    }  # fmt: skip
    assert TRIAL_FIELDS == {
        "suite": str, "trial": int, "env_seed": int, "agent_seed": int, "task_ids": list, "episodes": list,
        "wall_time": (int, float),
    }  # fmt: skip
    # What the runner writes (to_dict) has exactly these fields, of these types.
    episode = EpisodeRecord(1, 3, 0, 3, 1.0, False)
    record = TrialRecord("id", 0, 1, 2, [SUITES["id"].tasks[0][0].task_id], [episode], 0.5)
    data = record.to_dict()
    assert list(data) == list(TRIAL_FIELDS) and list(data["episodes"][0]) == list(EPISODE_FIELDS)
    assert TrialRecord.from_dict(json.loads(json.dumps(data))) == record


def test_records_are_still_importable_from_the_runner():
    from icrl_bench.protocol import runner

    assert runner.TrialRecord is TrialRecord and runner.EpisodeRecord is EpisodeRecord
