import numpy as np
import pytest

from icrl_bench.envs import InvalidTaskError, MapGenerator, random_success_probability
from icrl_bench.envs.task import goal_distances

ID = MapGenerator()
OOD = MapGenerator(height=(6, 7), width=(6, 7))


def test_same_seed_same_maps_and_prefix_property():
    a = ID.sample_many(50, 7)
    assert a == ID.sample_many(50, 7)
    assert ID.sample_many(10, 7) == a[:10]
    assert ID.sample(7) == a[0]
    assert ID.sample_many(50, 8) != a


@pytest.mark.parametrize("gen", [ID, OOD, MapGenerator(height=(2, 9), width=(4, 4), p_hole=0.3, min_hops=3)])
def test_every_map_obeys_the_generator_rules(gen):
    for task in gen.sample_many(300, 1):
        assert gen.height[0] <= task.nrow <= gen.height[1]
        assert gen.width[0] <= task.ncol <= gen.width[1]
        # Recompute the distances independently of the generator's batched BFS.
        dist = goal_distances(task.rows)
        assert task.goal_distances == dist
        assert task.starts
        assert all(dist[s] is not None and dist[s] >= gen.min_hops for s in task.starts)


def test_generator_options_reach_the_tasks():
    tasks = MapGenerator(success_rate=0.5, permute_actions=True, max_steps=33).sample_many(200, 0)
    assert {t.success_rate for t in tasks} == {0.5}
    assert {t.max_steps for t in tasks} == {33}
    perms = {t.action_permutation for t in tasks}
    # The identity is stored as None (one task, one id); the other 23 as tuples.
    assert len(perms) > 15 and all(p is None or sorted(p) == [0, 1, 2, 3] for p in perms)


@pytest.mark.parametrize(
    "gen, expected_random, expected_path, tol_random",
    [
        # PAPER.md calibration: random policy ~15.3% (ID) / ~7.3% (OOD) per episode; mean shortest start-to-goal
        # path 4.8 / 5.8 moves. Exact per-map probabilities over 1500 maps: standard error ~0.004 (ID), ~0.002 (OOD).
        (ID, 0.153, 4.8, 0.015),
        (OOD, 0.073, 5.8, 0.010),
    ],
)
def test_random_policy_calibration_matches_the_paper(gen, expected_random, expected_path, tol_random):
    tasks = gen.sample_many(1500, 12345)
    success = np.mean([random_success_probability(t) for t in tasks])
    assert abs(success - expected_random) < tol_random
    path = np.mean([d for t in tasks for d in t.start_distances])
    assert abs(path - expected_path) < 0.15


def test_tile_counts_match_the_paper():
    tasks = ID.sample_many(4000, 3)
    # PAPER.md: on average 1.35 S / 1.30 G / 2.95 H tiles per ID map (its sample size is not given; we measure
    # 1.36 / 1.33 / 2.97 over 60,000 maps, so the tolerance allows for a few standard errors of theirs).
    assert abs(np.mean([len(t.starts) for t in tasks]) - 1.35) < 0.04
    assert abs(np.mean([len(t.goals) for t in tasks]) - 1.30) < 0.05
    assert abs(np.mean([len(t.holes) for t in tasks]) - 2.95) < 0.10


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"height": (5, 3)}, "1 <= low <= high"),
        ({"width": 4}, "pair of integers"),
        ({"p_hole": 1.5}, r"p_hole must be a number in \[0, 1\]"),
        ({"p_goal": 0.0}, "must be positive"),
        ({"min_hops": 0}, "min_hops must be a positive integer"),
        ({"min_hops": 4.0}, "min_hops must be a positive integer"),
        ({"min_hops": 25}, "largest feasible min_hops is 24"),
        ({"success_rate": 2.0}, "success_rate"),
        ({"p_hole": "0.2"}, r"p_hole must be a number in \[0, 1\], got '0.2'"),
        ({"p_goal": False}, r"p_goal must be a number in \[0, 1\], got False"),
        ({"permute_actions": "yes"}, "permute_actions must be True or False"),
        ({"height": (3, 33)}, r"height=\(3, 33\) is too large: generated maps have at most 32"),
        ({"height": (1, 1), "width": (1, 1)}, "no room for a start and a goal"),
    ],
)
def test_bad_generator_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MapGenerator(**kwargs)


def test_impossible_distribution_fails_loudly_instead_of_looping():
    with pytest.raises(ValueError, match="largest feasible min_hops is 2"):
        MapGenerator(height=(1, 1), width=(2, 3), min_hops=4)  # no 1x3 map has a 4-move path: rejected at once
    # A 2x2 map has no shortest path of 3 moves, though 3 <= 2 * 2 - 1: the sampler gives up after a fixed budget.
    with pytest.raises(InvalidTaskError, match="no valid map in [0-9,]+ candidates"):
        MapGenerator(height=(2, 2), width=(2, 2), min_hops=3).sample(0)


@pytest.mark.parametrize(("kwargs", "digest"), [({}, "b8a77235bd1023ba"),
                                                ({"height": (6, 7), "width": (6, 7)}, "2fd822e7d4d4561d"),
                                                ({"p_hole": 0.35}, "3676f03c43ff2f5f")])  # fmt: skip
def test_the_map_streams_of_a_seed_are_pinned(kwargs, digest):
    """A faster generator must draw exactly these maps (datasets, envs and training runs depend on them)."""
    import hashlib

    from icrl_bench.envs.schedule import task_rng

    stream = MapGenerator(**kwargs).stream(task_rng(0))
    ids = "".join(next(stream).task_id for _ in range(200))
    assert hashlib.sha256(ids.encode()).hexdigest()[:16] == digest


def test_the_vector_envs_first_tasks_of_a_seed_are_pinned():
    import hashlib

    import gymnasium as gym

    env = gym.make_vec("ICRLFrozenLake-v0", num_envs=256, vectorization_mode="vector_entry_point")
    _, info = env.reset(seed=0)
    assert hashlib.sha256("".join(info["task_id"]).encode()).hexdigest()[:16] == "1e197f8a7151ca4c"


@pytest.mark.parametrize("gen", [ID, MapGenerator(height=(2, 9), width=(4, 6), permute_actions=True, success_rate=0.8,
                                                  max_steps=33, min_hops=2)])  # fmt: skip
def test_tasks_served_as_block_rows_equal_their_taskspecs(gen):
    """The vector env's path (rows, ids and transition tables read from a block, no TaskSpec) gives what the
    TaskSpec and `compile_task` give."""
    from icrl_bench.envs.dynamics import compile_task, expand_tables

    stream = gen.stream(3)
    for _ in range(400):
        block, j = stream.next_ref()
        task = block.task(j)
        assert (block.rows(j), block.task_id(j), block.map_id(j)) == (task.rows, task.task_id, task.map_id)
        row = expand_tables(block.table(j)[None], gen.max_width)
        row = {name: value[0] for name, value in row.items()}
        t, n, k = compile_task(task), task.n_tiles, len(task.starts)
        assert row["kind"][:n].tolist() == list(t.kind) and not row["kind"][n:].any()
        assert row["next_tile"][:n].tolist() == [list(x) for x in t.next_tile]
        assert row["starts"][:k].tolist() == list(t.starts) and set(row["starts"][k:]) <= {t.starts[0]}
        assert row["start_cdf"][:k].tolist() == list(t.start_cdf)  # bit for bit
        assert np.isinf(row["start_cdf"][k:]).all()
        assert row["perm"].tolist() == list(t.perm) and row["ncol"] == t.ncol


def test_prefill_in_batches_and_ahead_gives_each_stream_its_own_sequence():
    from icrl_bench.envs.generator import prefill

    gen = MapGenerator(p_hole=0.3)
    alone = [[t.task_id for t in gen.sample_many(300, seed)] for seed in range(40)]
    streams = [gen.stream(seed) for seed in range(40)]
    got = [[] for _ in streams]
    rng = np.random.default_rng(0)
    for _ in range(6000):
        k = rng.choice(40, size=3, replace=False)  # a few streams ask per step; every stream near its end draws ahead
        prefill([streams[i] for i in k], pool=lambda: streams, ahead=5)
        for i in k:
            if len(got[i]) < 300:
                block, j = streams[i].next_ref()
                got[i].append(block.task_id(j))
    assert got == alone
