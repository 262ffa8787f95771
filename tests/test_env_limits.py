"""Generator limits: impossible or huge settings fail fast, naming the parameter and what is feasible.

Timings use a generous bound (the failures take 0.1-0.5 s on one idle core) so that a loaded machine never
makes these tests flaky.
"""

import hashlib
import re
import time

import gymnasium as gym
import numpy as np
import pytest

import icrl_bench  # noqa: F401  (registers the ids)
from icrl_bench.envs import ENV_SPECS, ICRLFrozenLakeEnv, InvalidTaskError, MapGenerator, StitchingGenerator, TaskSpec
from icrl_bench.envs.frozen_lake import make_source
from icrl_bench.envs.generator import MAX_MAP_SIZE
from icrl_bench.envs.registration import source_kwargs

FAST = 2.0  # seconds: "well under a second" on an idle core, with room for a loaded one


def raises_fast(exc, message, build):
    """Assert that `build()` raises `exc` matching `message` (a literal text) within FAST seconds; the error."""
    start = time.perf_counter()
    with pytest.raises(exc, match=re.escape(message)) as info:
        build()
    assert time.perf_counter() - start < FAST
    return info.value


def test_every_registered_id_draws_the_same_maps_as_before_the_limits():
    # Task ids of the first trials of seeds 0 and 1 of every id, recorded before the limits were added.
    expected = {
        "ICRLFrozenLake-v0": "723a8007330e692a", "ICRLFrozenLakeLarge-v0": "f8789b337c011a4b",
        "ICRLFrozenLakeXL-v0": "993b6c4e7655772c", "ICRLFrozenLakeDense-v0": "46b438c9fd166702",
        "ICRLFrozenLakeSlippery-v0": "1ebefc4707689ea8", "ICRLFrozenLakePermuted-v0": "e5238aeb09a1b5a8",
        "ICRLFrozenLakeNonStationary-v0": "723a8007330e692a", "ICRLFrozenLakeStitching-v0": "b3dd211d3199d2ef",
        "ICRLFrozenLakeStitchingPaper-v0": "f17d13b1422dbe8c",
    }  # fmt: skip
    found = {}
    for env_id in ENV_SPECS:
        env = gym.make(env_id)
        ids = []
        for seed in (0, 1):
            env.reset(seed=seed)
            ids.append(env.unwrapped.task.task_id)
            for _ in range(3):
                env.reset(options={"new_task": True})
                ids.append(env.unwrapped.task.task_id)
        found[env_id] = hashlib.sha256(" ".join(ids).encode()).hexdigest()[:16]
    assert found == expected
    # Mutations (n_mutations now validated) flip the same tiles as before.
    env = gym.make("ICRLFrozenLake-v0", change_every=1, change_kind="mutate", n_mutations=3)
    env.reset(seed=4)
    ids = [env.unwrapped.task.task_id]
    for _ in range(6):
        env.reset()
        ids.append(env.unwrapped.task.task_id)
    assert hashlib.sha256(" ".join(ids).encode()).hexdigest()[:16] == "afec09c70a930bbd"


def test_every_registered_id_fits_the_maximum_map_size():
    for env_id in ENV_SPECS:
        source = make_source(**source_kwargs(env_id))
        assert max(source.max_height, source.max_width) <= MAX_MAP_SIZE


@pytest.mark.parametrize(
    "env_id, kwargs, message",
    [
        ("ICRLFrozenLake-v0", {"height": (50, 50), "width": (50, 50)}, "height=(50, 50) is too large"),
        ("ICRLFrozenLake-v0", {"width": (200, 200)}, "width=(200, 200) is too large"),
        ("ICRLFrozenLake-v0", {"height": (3, MAX_MAP_SIZE + 1)}, f"height=(3, {MAX_MAP_SIZE + 1}) is too large"),
        ("ICRLFrozenLakeStitching-v0", {"width": (4, 40)}, "width=(4, 40) is too large"),
    ],
)
def test_maps_above_the_maximum_size_are_rejected_at_once(env_id, kwargs, message):
    # height=(50, 50) used to sample for 241 s and then advise "allow larger maps".
    error = raises_fast(ValueError, message, lambda: gym.make(env_id, **kwargs).reset(seed=0))
    assert f"at most {MAX_MAP_SIZE} rows and columns" in str(error)
    assert "largest feasible" in str(error)


def test_the_maximum_map_size_is_served():
    tasks = MapGenerator(height=(MAX_MAP_SIZE, MAX_MAP_SIZE), width=(30, MAX_MAP_SIZE), p_start=0.002,
                         p_goal=0.002, min_hops=10).sample_many(20, 0)  # fmt: skip
    assert all(t.nrow == MAX_MAP_SIZE and 30 <= t.ncol <= MAX_MAP_SIZE for t in tasks)
    task = StitchingGenerator(height=(MAX_MAP_SIZE, MAX_MAP_SIZE), width=(MAX_MAP_SIZE, MAX_MAP_SIZE)).sample(0)
    assert task.nrow == task.ncol == MAX_MAP_SIZE


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: gym.make("ICRLFrozenLake-v0", min_hops=100), "largest feasible min_hops is 24"),
        (lambda: MapGenerator(height=(1, 1), width=(2, 7), min_hops=7), "largest feasible min_hops is 6"),
        (lambda: MapGenerator(height=(32, 32), width=(32, 32), min_hops=1024), "largest feasible min_hops is 1023"),
        (lambda: gym.make("ICRLFrozenLakeStitching-v0", min_hops=40), "largest feasible min_hops is 35"),
    ],
)
def test_min_hops_beyond_the_largest_map_names_the_largest_feasible_value(build, message):
    error = raises_fast(ValueError, message, build)
    assert str(error).startswith("min_hops=")


@pytest.mark.parametrize(
    "kwargs, messages",
    [
        # Possible in principle, (almost) never accepted: each names the rule that rejected and what to change.
        ({"height": (32, 32), "width": (32, 32)}, ["a start fewer than min_hops=4 moves", "lower min_hops"]),
        ({"height": (32, 32), "width": (32, 32), "p_hole": 0.9}, ["lower p_start and p_goal"]),
        ({"min_hops": 20}, ["lower min_hops", "allow larger maps (height and width up to 32)"]),
        ({"height": (5, 5), "width": (5, 5), "p_hole": 1.0, "min_hops": 2},
         ["no path reaches a goal (lower p_hole)"]),
        ({"height": (32, 32), "width": (32, 32), "p_start": 1e-9, "p_goal": 1e-9}, ["no start or no goal",
                                                                                     "raise p_start or p_goal"]),
        ({"height": (32, 32), "width": (32, 32), "p_start": 0.001, "p_goal": 0.001, "p_hole": 0.41,
          "min_hops": 1000}, ["min_hops=1000"]),
    ],
)  # fmt: skip
@pytest.mark.parametrize("num_envs", [None, 256])  # the single env; the vector env's batched first blocks
def test_hopeless_settings_fail_fast_naming_what_to_change(kwargs, messages, num_envs):
    if num_envs is None:
        env = gym.make("ICRLFrozenLake-v0", **kwargs)
    else:
        env = gym.make_vec("ICRLFrozenLake-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    error = raises_fast(InvalidTaskError, "no valid map in", lambda: env.reset(seed=0))
    assert "almost) never give one" in str(error)
    for message in messages:
        assert message in str(error)


def test_hopeless_stitching_settings_fail_fast_naming_what_to_change():
    env = gym.make("ICRLFrozenLakeStitching-v0", height=(32, 32), width=(32, 32), max_steps=4)
    error = raises_fast(InvalidTaskError, "no stitching task in 70 attempts", lambda: env.reset(seed=0))
    assert "longer than max_steps (raise max_steps)" in str(error)
    error = raises_fast(InvalidTaskError, "no stitching task in 2,000 attempts", StitchingGenerator(min_hops=35).sample)
    assert "fewer than min_hops moves from the goal (lower min_hops" in str(error)


@pytest.mark.parametrize("name", ["p_start", "p_goal", "p_hole"])
@pytest.mark.parametrize("value", ["0.2", True, None, -0.1, 1.5, float("nan")])
def test_probabilities_must_be_numbers_in_0_1(name, value):
    raises_fast(ValueError, f"{name} must be a number in [0, 1], got {value!r}",
                lambda: gym.make("ICRLFrozenLake-v0", **{name: value}))  # fmt: skip


def test_probabilities_of_the_other_sources_and_tasks_are_checked_the_same_way():
    with pytest.raises(ValueError, match=re.escape("p_hole must be a number in [0, 1], got '0.3'")):
        gym.make("ICRLFrozenLakeStitching-v0", p_hole="0.3")
    with pytest.raises(ValueError, match="p_hole must be above 0 and below 1 for stitching"):
        StitchingGenerator(p_hole=0.0)
    with pytest.raises(InvalidTaskError, match=re.escape("success_rate must be a number in [0, 1], got '1'")):
        gym.make("ICRLFrozenLake-v0", success_rate="1")
    with pytest.raises(InvalidTaskError, match=re.escape("success_rate must be a number in [0, 1], got True")):
        TaskSpec(rows="SFG", success_rate=True)
    with pytest.raises(ValueError, match="p_start must be below 1"):
        MapGenerator(p_start=1.0)
    assert MapGenerator(p_hole=np.float32(0.25), p_start=1 / 8).p_hole == 0.25  # numpy and exact numbers are fine


@pytest.mark.parametrize("value", ["yes", 1, 0, None, "False"])
def test_booleans_must_be_real_bools(value):
    with pytest.raises(ValueError, match=re.escape(f"permute_actions must be True or False, got {value!r}")):
        gym.make("ICRLFrozenLake-v0", permute_actions=value)
    with pytest.raises(ValueError, match=re.escape(f"stitching must be True or False, got {value!r}")):
        gym.make("ICRLFrozenLake-v0", stitching=value)


def test_numpy_bools_are_bools():
    assert MapGenerator(permute_actions=np.True_).permute_actions is True
    env = gym.make("ICRLFrozenLake-v0")
    env.reset(seed=0, options={"new_task": np.False_})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_mutations": 1000}, "n_mutations=1000 is impossible: a map of at most 5x5 tiles has at most 23 frozen"),
        ({"n_mutations": 24}, "largest feasible n_mutations is 23"),
        ({"n_mutations": 2.0}, "n_mutations must be a positive integer, got 2.0"),
        ({"n_mutations": "2"}, "n_mutations must be a positive integer, got '2'"),
        ({"n_mutations": True}, "n_mutations must be a positive integer, got True"),
        ({"n_mutations": 0}, "n_mutations must be a positive integer, got 0"),
    ],
)
def test_n_mutations_must_be_a_feasible_integer(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        gym.make("ICRLFrozenLake-v0", change_every=5, change_kind="mutate", **kwargs)


def test_n_mutations_bound_follows_the_source():
    gym.make("ICRLFrozenLakeXL-v0", change_every=5, change_kind="mutate", n_mutations=98)  # 10x10 less S and G
    with pytest.raises(ValueError, match="largest feasible n_mutations is 98"):
        gym.make("ICRLFrozenLakeXL-v0", change_every=5, change_kind="mutate", n_mutations=99)
    with pytest.raises(ValueError, match="largest feasible n_mutations is 2"):
        ICRLFrozenLakeEnv(task="SFFG", change_every=1, change_kind="mutate", n_mutations=3)
    env = gym.make("ICRLFrozenLake-v0", change_every=1, change_kind="mutate", n_mutations=np.int64(23))
    env.reset(seed=0)
    env.reset()  # flipping every frozen and hole tile is allowed (resampled where invalid)
    assert env.unwrapped.schedule.n_mutations == 23


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"change_kind": "mutate"}, "change_kind='mutate' needs change_every"),
        ({"change_kind": "resample", "episodes_per_task": 3}, "change_kind='resample' needs change_every"),
        ({"n_mutations": 3}, "n_mutations=3 needs change_kind='mutate'"),
        ({"change_every": 2, "n_mutations": 3}, "n_mutations=3 needs change_kind='mutate'"),
        ({"change_every": 2, "change_kind": "permute", "n_mutations": 3}, "n_mutations=3 needs change_kind='mutate'"),
        ({"change_every": 2.0}, "change_every must be a positive integer, got 2.0"),
        ({"episodes_per_task": "3"}, "episodes_per_task must be a positive integer, got '3'"),
        ({"change_every": 2, "change_kind": ["mutate"]}, "unknown change_kind ['mutate']"),
    ],
)
def test_schedule_arguments_that_would_do_nothing_or_are_mistyped_are_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        gym.make("ICRLFrozenLake-v0", **kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        gym.make_vec("ICRLFrozenLake-v0", num_envs=2, vectorization_mode="vector_entry_point", **kwargs)


def test_schedule_defaults_stay_resample_and_two_mutations():
    schedule = gym.make("ICRLFrozenLakeNonStationary-v0").unwrapped.schedule
    assert (schedule.change_every, schedule.change_kind, schedule.n_mutations) == (30, "resample", 2)
    schedule = gym.make("ICRLFrozenLake-v0", change_every=3, change_kind="mutate").unwrapped.schedule
    assert (schedule.change_kind, schedule.n_mutations) == ("mutate", 2)


@pytest.mark.parametrize(
    "rows, message",
    [
        ("SFF//FFG", "the map 'SFF//FFG' has an empty row 1"),
        ("SFF/FFG/", "the map 'SFF/FFG/' has an empty row 2"),
        ("/SFF/FFG", "the map '/SFF/FFG' has an empty row 0"),
        ("SFF/ /FFG", "the map 'SFF/ /FFG' has an empty row 1"),
        (["SFF", "", "FFG"], "the map ['SFF', '', 'FFG'] has an empty row 1"),
    ],
)
def test_empty_rows_are_an_error_naming_the_map_and_the_row(rows, message):
    with pytest.raises(InvalidTaskError, match=re.escape(message)):
        TaskSpec(rows=rows)
    with pytest.raises(InvalidTaskError, match=re.escape(message)):
        gym.make("ICRLFrozenLake-v0", task=rows if isinstance(rows, str) else {"rows": rows})


def test_separators_that_are_not_empty_rows_still_work():
    task = TaskSpec(rows=("SFF", "FFG"))
    for text in ("SFF/FFG", "SFF FFG", "SFF\nFFG\n", "  SFF / FFG  ", "SFF\n\nFFG"):
        assert TaskSpec(rows=text) == task
