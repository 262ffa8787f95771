import json
import pickle

import pytest

from icrl_bench.envs import Demonstration, InvalidTaskError, TaskSpec
from icrl_bench.envs.task import goal_distances

CLASSIC = ("SFFF", "FHFH", "FFFH", "HFFG")


def test_string_and_sequence_forms_are_the_same_task():
    a = TaskSpec(rows=CLASSIC)
    assert TaskSpec(rows="SFFF/FHFH/FFFH/HFFG") == a
    assert TaskSpec(rows="SFFF\nFHFH\nFFFH\nHFFG") == a
    assert hash(TaskSpec(rows=list(CLASSIC))) == hash(a)
    assert len({a, TaskSpec(rows=CLASSIC), TaskSpec(rows=CLASSIC, success_rate=0.5)}) == 2


def test_task_id_is_a_stable_content_hash():
    # Golden values: the same task must have the same id on every machine and Python version.
    task = TaskSpec(rows=CLASSIC)
    assert task.to_json() == (
        '{"action_permutation":null,"demonstrations":[],"max_steps":100,'
        '"rows":["SFFF","FHFH","FFFH","HFFG"],"success_rate":1.0}'
    )
    assert task.task_id == "a57d6574618d5264"
    assert task.map_id == TaskSpec(rows=CLASSIC, success_rate=0.5).map_id
    assert task.task_id != TaskSpec(rows=CLASSIC, success_rate=0.5).task_id
    assert task.task_id != TaskSpec(rows=CLASSIC, action_permutation=(1, 0, 2, 3)).task_id


def test_json_and_pickle_round_trip():
    task = TaskSpec(
        rows=("SFF", "FHF", "FFG"),
        success_rate=0.5,
        action_permutation=(3, 2, 1, 0),
        max_steps=40,
    )
    assert TaskSpec.from_json(task.to_json()) == task
    assert TaskSpec.from_dict(json.loads(json.dumps(task.to_dict()))).task_id == task.task_id
    assert pickle.loads(pickle.dumps(task)) == task


@pytest.mark.parametrize(
    "rows, message",
    [
        (("SFF", "FF", "FFG"), "row 1 ('FF') has 2 tiles but row 0"),
        (("SFX", "FFG"), "unknown tile 'X' at row 0, column 2"),
        (("FFF", "FFG"), "no start tile"),
        (("SFF", "FFF"), "no goal tile"),
        (("SHF", "HFG"), "start at row 0, column 0 (tile 0) cannot reach any goal"),
        ((), "empty"),
        ("", "empty"),
        ("SFF//FFG", "the map 'SFF//FFG' has an empty row 1"),
        (("SFF", "", "FFG"), "has an empty row 1"),
    ],
)
def test_broken_maps_say_what_is_wrong(rows, message):
    with pytest.raises(InvalidTaskError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TaskSpec(rows=rows)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"success_rate": 1.5}, "success_rate must be a number in"),
        ({"action_permutation": (0, 0, 1, 2)}, "permutation of"),
        ({"max_steps": 0}, "max_steps must be a positive integer"),
        ({"max_steps": "100"}, "max_steps must be a positive integer"),
        ({"success_rate": "0.5"}, "success_rate must be a number in"),
        ({"demonstrations": (Demonstration(2, (1,)),)}, "not a frozen or start tile"),
        ({"demonstrations": (Demonstration(0, (2, 2, 2)),)}, "goes on after the episode ended"),
        ({"demonstrations": (Demonstration(0, (7,)),)}, "outside 0..3"),
        ({"success_rate": 0.5, "demonstrations": (Demonstration(0, (2,)),)}, "deterministic dynamics"),
    ],
)
def test_bad_dynamics_and_demonstrations_are_rejected(kwargs, message):
    with pytest.raises(InvalidTaskError, match=message):
        TaskSpec(rows=("SFG", "FFF"), **kwargs)


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(InvalidTaskError, match="unknown task field"):
        TaskSpec.from_dict({"rows": ["SG"], "slipery": 0.1})


def test_goal_distances_treat_holes_as_walls_and_pass_through_starts():
    rows = ("SFH", "HSF", "GHF")
    d = goal_distances(rows)
    # G at tile 6 is walled in by holes at 3 and 7: nothing reaches it.
    assert d == (None, None, None, None, None, None, 0, None, None)
    d = goal_distances(("SFF", "HHF", "GFF"))
    assert d[0] == 6 and d[2] == 4 and d[6] == 0
    assert TaskSpec(rows=("SFF", "HHF", "GFF")).start_distances == (6,)


def test_move_and_rollout_follow_walls_and_permutation():
    task = TaskSpec(rows=("SFG",), action_permutation=(2, 1, 0, 3))
    # Action 0 ("left") moves right under this permutation.
    demo = task.rollout(Demonstration(0, (0, 0)))
    assert [(t.obs, t.next_obs, t.reward, t.terminated) for t in demo] == [(0, 1, 0.0, False), (1, 2, 1.0, True)]
    assert task.move(0, 0) == 0  # the wall keeps you in place


def test_numpy_numbers_are_accepted_and_floats_never_truncated():
    import numpy as np

    from icrl_bench.envs import MapGenerator

    task = TaskSpec(rows="SFG", max_steps=np.int64(50), success_rate=np.float32(0.5))
    assert task.max_steps == 50 and isinstance(task.max_steps, int) and task.success_rate == 0.5
    assert MapGenerator(min_hops=np.int64(3), height=(np.int64(3), 4)).min_hops == 3
    with pytest.raises(InvalidTaskError, match="integer"):
        Demonstration(start=2.7, actions=(1,))
    with pytest.raises(InvalidTaskError, match="permutation"):
        TaskSpec(rows="SFG", action_permutation=(0.0, 1.5, 2, 3))
    with pytest.raises(InvalidTaskError, match="max_steps"):
        TaskSpec(rows="SFG", max_steps=2.5)
    with pytest.raises(ValueError, match="pair of integers"):
        MapGenerator(height=(3.7, 5))


@pytest.mark.parametrize(
    "build",
    [
        lambda: TaskSpec(rows=5),
        lambda: TaskSpec(rows=None),
        lambda: TaskSpec(rows="SFG", action_permutation=5),
        lambda: TaskSpec.from_dict({"rows": ["SFG"], "demonstrations": [{"start": 0}]}),
        lambda: TaskSpec.from_dict(["SFG"]),
    ],
)
def test_malformed_input_raises_invalid_task_error(build):
    with pytest.raises(InvalidTaskError):
        build()
