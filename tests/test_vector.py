"""The numpy-batched env gives exactly what SyncVectorEnv over single envs gives."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

import icrl_bench  # noqa: F401
from icrl_bench.envs import ICRLFrozenLakeVectorEnv, TaskSpec

CASES = [
    ("ICRLFrozenLake-v0", {}),
    ("ICRLFrozenLakeSlippery-v0", {}),
    ("ICRLFrozenLakePermuted-v0", {}),
    ("ICRLFrozenLakeXL-v0", {}),
    ("ICRLFrozenLakeStitching-v0", {"max_steps": 12}),
    ("ICRLFrozenLake-v0", {"episodes_per_task": 3, "change_every": 2, "change_kind": "mutate", "max_steps": 15}),
    ("ICRLFrozenLakeNonStationary-v0", {"change_every": 2, "max_steps": 10}),
    # A new task every episode: tasks served from generator blocks without TaskSpecs, blocks drawn ahead.
    ("ICRLFrozenLake-v0", {"episodes_per_task": 1}),
    ("ICRLFrozenLakePermuted-v0", {"episodes_per_task": 1, "max_steps": 10}),
    ("ICRLFrozenLakeSlippery-v0", {"episodes_per_task": 2, "exclude_maps": "first maps of each stream"}),
]


def banned_maps(n, seed=42):
    """Every other map of the first 40 that sub-envs seeded `seed`, `seed + 1`, ... draw: the skipping path."""
    from icrl_bench.envs import MapGenerator
    from icrl_bench.envs.schedule import task_rng

    return frozenset(t.map_id for i in range(n) for t in MapGenerator().sample_many(40, task_rng(seed + i))[::2])


def pair(env_id, n, **kwargs):
    ours = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    ref = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync", **kwargs)
    return ours, ref


@pytest.mark.parametrize("env_id, kwargs", CASES)
def test_matches_sync_vector_env(env_id, kwargs):
    n = 6
    if "exclude_maps" in kwargs:
        kwargs = {**kwargs, "exclude_maps": banned_maps(n)}
    ours, ref = pair(env_id, n, **kwargs)
    assert isinstance(ours.unwrapped, ICRLFrozenLakeVectorEnv)
    assert ours.observation_space == ref.observation_space and ours.action_space == ref.action_space
    got, want = ours.reset(seed=42), ref.reset(seed=42)
    assert data_equivalence(got, want)
    rng = np.random.default_rng(0)
    resets = 0
    for step in range(700):  # > 512 steps: crosses a read-ahead block of uniforms
        actions = rng.integers(4, size=n)
        got, want = ours.step(actions), ref.step(actions)
        assert data_equivalence(got, want), f"step {step}"
        resets += int(got[2].sum() + got[3].sum())
    assert resets > 50
    # A plain reset continues every trial; a reseed restarts them.
    assert data_equivalence(ours.reset(), ref.reset())
    assert data_equivalence(ours.reset(seed=[3, 1, 4, 1, 5, 9]), ref.reset(seed=[3, 1, 4, 1, 5, 9]))


def test_same_as_independent_single_envs():
    n = 4
    vec = gym.make_vec("ICRLFrozenLakeSlippery-v0", num_envs=n, vectorization_mode="vector_entry_point")
    singles = [gym.make("ICRLFrozenLakeSlippery-v0") for _ in range(n)]
    obs, _ = vec.reset(seed=7)
    assert obs.tolist() == [e.reset(seed=7 + i)[0] for i, e in enumerate(singles)]
    rng = np.random.default_rng(1)
    pending = [False] * n
    for _ in range(300):
        actions = rng.integers(4, size=n)
        obs, rew, term, trunc, _ = vec.step(actions)
        for i, e in enumerate(singles):
            if pending[i]:  # next-step autoreset
                assert obs[i] == e.reset()[0] and rew[i] == 0.0
                pending[i] = False
                continue
            o, r, te, tr, _ = e.step(int(actions[i]))
            assert (obs[i], rew[i], term[i], trunc[i]) == (o, r, te, tr)
            pending[i] = te or tr


def test_reset_options_tasks_mask_and_errors():
    n = 3
    vec = ICRLFrozenLakeVectorEnv(n)
    vec.reset(seed=0)
    tasks = [TaskSpec(rows="SFG"), TaskSpec(rows="SFF/FFG"), TaskSpec(rows="GFS")]
    obs, info = vec.reset(options={"tasks": tasks})
    assert obs.tolist() == [0, 0, 2] and list(info["task_id"]) == [t.task_id for t in tasks]
    obs, info = vec.reset(options={"task": "SFFG", "reset_mask": np.array([False, True, False])})
    assert info["_task_id"].tolist() == [False, True, False] and info["task_id"][1] == TaskSpec(rows="SFFG").task_id
    assert [s.task for s in vec.schedules] == [tasks[0], TaskSpec(rows="SFFG"), tasks[2]]
    with pytest.raises(ValueError, match="invalid action"):
        vec.step(np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.array([0, 1]))
    with pytest.raises(ValueError, match="integers"):
        vec.step(np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="one task per sub-env"):
        vec.reset(options={"tasks": tasks[:2]})
    with pytest.raises(ValueError, match="unknown reset option"):
        vec.reset(options={"taks": tasks})


def test_vector_render_modes():
    vec = ICRLFrozenLakeVectorEnv(2, render_mode="rgb_array")
    vec.reset(seed=0)
    frames = vec.render()
    assert len(frames) == 2 and frames[0].shape == (5 * 64, 5 * 64, 3)
    vec = ICRLFrozenLakeVectorEnv(2, render_mode="ansi")
    vec.reset(seed=0)
    assert all(isinstance(t, str) for t in vec.render())


def test_matches_sync_vector_env_under_masks_and_partial_seeds():
    n = 5
    ours, ref = pair("ICRLFrozenLakeSlippery-v0", n, max_steps=8, episodes_per_task=2, change_every=1, change_kind="mutate")
    assert data_equivalence(ours.reset(seed=1), ref.reset(seed=1))
    rng = np.random.default_rng(3)
    for step in range(1300):
        if step % 97 == 50:
            mask = rng.random(n) < 0.5
            kwargs = {"options": {"reset_mask": mask}}
            if step % 2:
                kwargs["seed"] = [None if rng.random() < 0.5 else int(rng.integers(100)) for _ in range(n)]
            assert data_equivalence(ours.reset(**kwargs), ref.reset(**kwargs)), f"reset at step {step}"
        actions = rng.integers(4, size=n)
        assert data_equivalence(ours.step(actions), ref.step(actions)), f"step {step}"


def test_sub_envs_never_reset_cannot_step_and_vector_env_pickles():
    import pickle

    vec = ICRLFrozenLakeVectorEnv(2, render_mode="rgb_array")
    vec.reset(seed=0, options={"reset_mask": np.array([True, False])})
    with pytest.raises(RuntimeError, match=r"sub-env\(s\) \[1\] were never reset"):
        vec.step(np.zeros(2, dtype=int))
    vec.reset(seed=0)
    vec.render()
    clone = pickle.loads(pickle.dumps(vec))
    for _ in range(50):
        a = np.array([1, 2])
        assert data_equivalence(vec.step(a), clone.step(a))


def test_a_new_task_every_episode_over_many_blocks_and_a_pickled_copy():
    """Thousands of tasks per sub-env (blocks of 32 ... 4096 candidates, drawn ahead in batches): the same
    tasks and steps as independent single envs, and a copy pickled mid-run (queued blocks included) goes on
    identically."""
    import pickle

    n = 3
    vec = gym.make_vec("ICRLFrozenLake-v0", num_envs=n, vectorization_mode="vector_entry_point", episodes_per_task=1)
    singles = [gym.make("ICRLFrozenLake-v0", episodes_per_task=1) for _ in range(n)]
    _, info = vec.reset(seed=5)
    ids = [[t] for t in info["task_id"]]
    want = [[e.reset(seed=5 + i)[1]["task_id"]] for i, e in enumerate(singles)]
    rng = np.random.default_rng(2)
    clone = None
    for step in range(25_000):
        if step == 12_000:
            clone = pickle.loads(pickle.dumps(vec))
            later = []
        actions = rng.integers(4, size=n)
        _, _, term, trunc, info = vec.step(actions)
        if clone is not None:
            later.append((actions, info.get("task_id")))
        for i in np.flatnonzero(info.get("_task_id", np.zeros(n, bool))):
            ids[i].append(info["task_id"][i])
    for i, e in enumerate(singles):
        while len(want[i]) < len(ids[i]):
            want[i].append(e.reset()[1]["task_id"])  # episodes_per_task=1: every reset is a new trial
    assert ids == want
    assert min(len(x) for x in ids) > 1_500  # past the 4,096-candidate blocks
    for actions, task_ids in later:
        got = clone.step(actions)[4].get("task_id")
        assert (got is None and task_ids is None) or list(got) == list(task_ids)
