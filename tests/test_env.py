"""The contract of every registered environment, and step-for-step equivalence with Gymnasium's FrozenLake-v1."""

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.utils.env_match import check_environments_match
from gymnasium.wrappers import TransformReward

import icrl_bench  # noqa: F401  (registers the ids)
from icrl_bench.envs import ENV_SPECS, ICRLFrozenLakeEnv, TaskSpec

IDS = list(ENV_SPECS)
EXPECTED_MAX_STEPS = {"ICRLFrozenLakeXL-v0": 200}


def rollout(env, seed, steps=300):
    """Observations, rewards and flags of `steps` random actions with resets, from `reset(seed=seed)`."""
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    out = [(obs, info["task_id"])]
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(int(rng.integers(4)))
        out.append((obs, r, term, trunc))
        if term or trunc:
            obs, info = env.reset()
            out.append((obs, info["task_id"], info["trial_episode"]))
    return out


@pytest.mark.parametrize("env_id", IDS)
def test_env_checker_passes_without_warnings(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(env_id).unwrapped)


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_rollout(env_id):
    a, b = gym.make(env_id), gym.make(env_id)
    assert rollout(a, 3) == rollout(b, 3)
    assert rollout(a, 3) != rollout(a, 4)


@pytest.mark.parametrize("env_id", IDS)
def test_pickled_env_continues_identically(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=5)
    for a in (1, 2, 1, 2):
        env.step(a)
    env.render()  # a pygame surface exists now: it must not stop pickling
    clone = pickle.loads(pickle.dumps(env))
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = int(rng.integers(4))
        step_a, step_b = env.step(a), clone.step(a)
        assert step_a == step_b
        if step_a[2] or step_a[3]:
            assert env.reset() == clone.reset()


@pytest.mark.parametrize("env_id", IDS)
def test_every_render_mode(env_id):
    env = gym.make(env_id, render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str)
    assert all(row in text.replace("\x1b[41m", "").replace("\x1b[0m", "") for row in env.unwrapped.task.rows)

    env = gym.make(env_id, render_mode="rgb_array")
    base = env.unwrapped
    shapes = set()
    for seed in range(4):  # maps of different sizes: frames keep one size
        env.reset(seed=seed)
        frame = env.render()
        assert frame.dtype == np.uint8
        shapes.add(frame.shape)
    assert shapes == {(base.max_height * 64, base.max_width * 64, 3)}

    import pygame

    env = gym.make(env_id, render_mode="human")
    env.reset(seed=0)
    assert env.render() is None
    assert pygame.display.get_surface().get_size() == (base.max_width * 64, base.max_height * 64)
    env.step(0)
    env.close()
    assert not pygame.display.get_init()


def safest_action(task, tile):
    """The action whose possible outcomes (intended and slips) most often stay on frozen tiles or walls."""

    def safe(d):
        return task.tile(task.move(tile, d)) in "SF"

    def score(a):
        d = task.direction(a)
        return safe(d) * 2 + (task.success_rate < 1) * (safe((d - 1) % 4) + safe((d + 1) % 4))

    return max(range(4), key=score)


@pytest.mark.parametrize("env_id", IDS)
def test_step_limit(env_id):
    env = gym.make(env_id)
    max_steps = EXPECTED_MAX_STEPS.get(env_id, 100)
    # On the id's own maps: avoid holes and goals until the step limit truncates an episode.
    for seed in range(60):
        obs, _ = env.reset(seed=seed)
        task = env.unwrapped.task
        assert task.max_steps == max_steps
        for step in range(1, max_steps + 1):
            obs, reward, terminated, truncated, _ = env.step(safest_action(task, obs))
            if terminated:
                break
            assert truncated == (step == max_steps)
        if not terminated:
            break
    else:
        pytest.fail("no episode lasted to the step limit")
    # And on an explicit map the agent can stay on forever by walking into the left wall.
    env.reset(options={"task": TaskSpec(rows=("SFFG",), max_steps=max_steps)})
    for step in range(1, max_steps + 1):
        obs, reward, terminated, truncated, _ = env.step(0)
        assert (obs, reward, terminated) == (0, 0.0, False)
        assert truncated == (step == max_steps)


def frozen_lake_v1(desc, slippery, success_rate=1 / 3):
    env = gym.make("FrozenLake-v1", desc=list(desc), is_slippery=slippery, success_rate=success_rate)
    return TransformReward(env, float)  # FrozenLake-v1 returns int rewards; ours are floats


MATCH_CASES = [
    (("SFFF", "FHFH", "FFFH", "HFFG"), False, 1 / 3),
    (("SFFF", "FHFH", "FFFH", "HFFG"), True, 1 / 3),
    (("SFFF", "FHFH", "FFFH", "HFFG"), True, 0.8),
    (("SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG"), True, 1 / 3),
    (("SFSF", "FHFG", "SFFH", "GFFS"), True, 0.6),  # several starts and goals
]


@pytest.mark.parametrize("desc, slippery, success_rate", MATCH_CASES)
def test_matches_frozen_lake_v1_step_for_step(desc, slippery, success_rate):
    task = TaskSpec(rows=desc, success_rate=success_rate if slippery else 1.0)
    ours = gym.make("ICRLFrozenLake-v0", task=task)
    theirs = frozen_lake_v1(desc, slippery, success_rate)
    check_environments_match(theirs, ours, num_steps=60, seed=11, info_comparison="skip")
    # Many episodes, including resets (start draws) and truncations, from one seed.
    rng = np.random.default_rng(1)
    assert ours.reset(seed=2)[0] == theirs.reset(seed=2)[0]
    episodes = 0
    for _ in range(5000):
        a = int(rng.integers(4))
        mine, ref = ours.step(a), theirs.step(a)
        assert mine[:4] == ref[:4]
        if mine[2] or mine[3]:
            episodes += 1
            assert ours.reset()[0] == theirs.reset()[0]
    assert episodes > 100


def test_invalid_action_is_a_clear_error():
    env = gym.make("ICRLFrozenLake-v0").unwrapped
    env.reset(seed=0)
    for bad in (4, -1, 1.0, "up", None, True):
        with pytest.raises(ValueError, match="invalid action"):
            env.step(bad)
    assert env.step(np.int64(1))[0] in range(env.observation_space.n)


def test_make_accepts_generator_kwargs_and_rejects_unknown_ones():
    env = gym.make("ICRLFrozenLakeLarge-v0", p_hole=0.3, max_steps=50)
    env.reset(seed=0)
    assert env.unwrapped.task.max_steps == 50
    assert env.observation_space == gym.spaces.Discrete(49)
    with pytest.raises(TypeError, match="unknown argument"):
        gym.make("ICRLFrozenLake-v0", p_holes=0.3)
    with pytest.raises(TypeError, match="fixed task takes no generator"):
        ICRLFrozenLakeEnv(task="SFG", p_hole=0.3)
    paper = gym.make("ICRLFrozenLakeStitchingPaper-v0", max_steps=7)
    paper.reset(seed=0)
    assert paper.unwrapped.task.max_steps == 7 and paper.unwrapped.task.rows[0] == "HHFF"
    with pytest.raises(ValueError, match=r"p_hole must be a number in \[0, 1\]"):
        gym.make("ICRLFrozenLake-v0", p_hole=-1)


def test_a_training_env_can_exclude_maps_and_draws_the_rest_in_the_same_order():
    import pickle

    from icrl_bench.envs import MapGenerator
    from icrl_bench.envs.frozen_lake import make_source
    from icrl_bench.envs.schedule import task_rng

    base = MapGenerator().stream(task_rng(3))
    first = [next(base) for _ in range(300)]
    banned = frozenset(t.map_id for t in first[:50])
    kept = [t for t in first if t.map_id not in banned]
    assert 0 < len(kept) < 300
    stream = make_source(exclude_maps=banned).stream(task_rng(3))
    assert [next(stream).task_id for _ in kept] == [t.task_id for t in kept]
    env = gym.make("ICRLFrozenLake-v0", exclude_maps=banned, change_every=2)  # changes draw from it too
    env.reset(seed=3)
    seen = set()
    for _ in range(200):
        seen.add(env.unwrapped.task.map_id)
        env.reset(options={"new_task": True} if len(seen) % 3 else None)
    assert seen and not seen & banned
    assert pickle.loads(pickle.dumps(env.unwrapped)).source.banned == banned  # checkpoints pickle envs
    with pytest.raises(TypeError, match="not to a fixed task"):
        make_source(task="SFG", exclude_maps=banned)
    with pytest.raises(TypeError, match="map ids"):
        make_source(exclude_maps={1, 2})


def test_compiled_moves_equal_the_tasks_own_move_rule_on_maps_of_every_shape():
    from icrl_bench.envs import MapGenerator
    from icrl_bench.envs.dynamics import compile_task
    from icrl_bench.envs.task import TaskSpec

    tasks = MapGenerator(height=(1, 7), width=(2, 9), p_goal=0.3, min_hops=1).sample_many(60, 0)
    tasks.append(TaskSpec(rows=("SG",)))
    assert len({(t.nrow, t.ncol) for t in tasks}) > 10
    for task in tasks:
        table = compile_task(task).next_tile
        assert table == tuple(tuple(task.move(s, d) for d in range(4)) for s in range(task.n_tiles))
        assert all(type(x) is int for row in table for x in row)
