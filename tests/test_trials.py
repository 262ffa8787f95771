"""Trial semantics: which task each episode is played on, and what the agent may learn from info."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import icrl_bench  # noqa: F401
from icrl_bench.envs import CHANGE_KINDS, ICRLFrozenLakeEnv, InvalidTaskError, MapGenerator, TaskSpec


def episode_tasks(env, n_episodes, seed=0):
    """(task, info) at the start of each of `n_episodes` episodes played with random actions."""
    rng = np.random.default_rng(seed)
    out = []
    obs, info = env.reset(seed=seed)
    for _ in range(n_episodes):
        out.append((env.unwrapped.task, info))
        while True:
            _, _, term, trunc, _ = env.step(int(rng.integers(4)))
            if term or trunc:
                break
        obs, info = env.reset()
    return out


def test_plain_reset_keeps_the_task_seeded_reset_draws_a_new_one():
    env = gym.make("ICRLFrozenLake-v0")
    eps = episode_tasks(env, 5)
    assert len({t for t, _ in eps}) == 1
    assert [i["trial_episode"] for _, i in eps] == [0, 1, 2, 3, 4]
    assert [i["task_changed"] for _, i in eps] == [True, False, False, False, False]
    env.reset(seed=1)
    other = env.unwrapped.task
    env.reset(seed=0)
    assert env.unwrapped.task == eps[0][0] != other


def test_new_task_and_explicit_task_options_start_a_trial():
    env = gym.make("ICRLFrozenLake-v0")
    env.reset(seed=0)
    first = env.unwrapped.task
    _, info = env.reset(options={"new_task": True})
    assert env.unwrapped.task != first and info["trial_episode"] == 0 and info["task_changed"]
    _, info = env.reset(options={"task": "SFF/FHF/FFG"})
    assert env.unwrapped.task == TaskSpec(rows="SFF/FHF/FFG")
    assert info["task_id"] == TaskSpec(rows="SFF/FHF/FFG").task_id and info["trial_episode"] == 0
    obs, info = env.reset()
    assert obs == 0 and info["trial_episode"] == 1


def test_bad_reset_options_are_clear_errors():
    env = gym.make("ICRLFrozenLake-v0")
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"tsk": "SG"})
    with pytest.raises(InvalidTaskError, match="at most 5x5"):
        env.reset(options={"task": "SFFFFF/FFFFFG"})
    with pytest.raises(InvalidTaskError, match="cannot reach any goal"):
        env.reset(options={"task": "SH/HG"})


def test_episodes_per_task_draws_a_new_task_every_k_episodes():
    env = gym.make("ICRLFrozenLake-v0", episodes_per_task=3)
    eps = episode_tasks(env, 9)
    tasks = [t for t, _ in eps]
    assert [i["trial_episode"] for _, i in eps] == [0, 1, 2] * 3
    assert tasks[0] == tasks[2] != tasks[3] == tasks[5] != tasks[6]


@pytest.mark.parametrize("kind", CHANGE_KINDS)
def test_non_stationary_change_every_k_episodes_keeps_maps_valid(kind):
    env = gym.make("ICRLFrozenLake-v0", change_every=4, change_kind=kind)
    eps = episode_tasks(env, 13, seed=2)
    tasks = [t for t, _ in eps]
    assert [i["trial_episode"] for _, i in eps] == list(range(13))  # one trial throughout
    changed = [i["task_changed"] for _, i in eps]
    assert changed == [k % 4 == 0 for k in range(13)]
    for k in range(1, 13):
        assert (tasks[k] != tasks[k - 1]) == changed[k]
    for before, after in zip(tasks[3::4], tasks[4::4]):
        assert min(after.start_distances) >= MapGenerator().min_hops
        if kind == "mutate":
            diff = sum(a != b for a, b in zip("".join(before.rows), "".join(after.rows)))
            assert diff == 2
        if kind == "move_goal":
            assert len(before.goals) == len(after.goals) and before.holes == after.holes
        if kind == "permute":
            assert before.rows == after.rows and before.action_permutation != after.action_permutation


def test_registered_non_stationary_env_changes_after_30_episodes():
    env = gym.make("ICRLFrozenLakeNonStationary-v0")
    eps = episode_tasks(env, 61)
    tasks = [t for t, _ in eps]
    assert len(set(tasks[:30])) == 1 and len(set(tasks[30:60])) == 1 and tasks[29] != tasks[30] != tasks[60]


def test_info_never_reveals_the_map():
    env = gym.make("ICRLFrozenLakeDense-v0")
    for task, info in episode_tasks(env, 20):
        text = repr(info)
        assert all(row not in text for row in task.rows if len(row) > 2)
        assert set(info) == {"task_id", "trial_episode", "task_changed"}


def test_schedule_arguments_are_checked():
    with pytest.raises(ValueError, match="change_kind"):
        ICRLFrozenLakeEnv(change_every=3, change_kind="shuffle")
    with pytest.raises(ValueError, match="episodes_per_task"):
        ICRLFrozenLakeEnv(episodes_per_task=0)


def test_resample_on_a_fixed_task_cannot_change_and_says_so():
    env = ICRLFrozenLakeEnv(task="SFFG", change_every=1)
    env.reset(seed=0)
    with pytest.raises(InvalidTaskError, match="a fixed task cannot be resampled"):
        env.reset()


def test_changes_never_fail_on_maps_without_a_valid_change_of_that_kind():
    # move_goal is impossible on ~12% of ID maps (any other goal position is too near a start); mutate on a few.
    env = gym.make("ICRLFrozenLake-v0", change_every=1, change_kind="move_goal")
    env.reset(seed=3)
    before = env.unwrapped.task
    env.reset()
    assert env.unwrapped.task != before
    from icrl_bench.envs.schedule import change_task

    tight = TaskSpec(rows="FFG/FHH/FSH")
    new = change_task(tight, "mutate", np.random.default_rng(0), MapGenerator())
    assert new != tight and min(new.start_distances) >= 4  # resampled: no valid flip exists on this map
    for kind in CHANGE_KINDS:
        env = gym.make("ICRLFrozenLakeDense-v0", change_every=1, change_kind=kind)
        env.reset(seed=0)
        for _ in range(150):
            previous = env.unwrapped.task
            _, info = env.reset()
            assert info["task_changed"] and env.unwrapped.task != previous


def test_permute_changes_keep_the_map_and_work_on_tiny_maps_and_demonstrations():
    env = gym.make("ICRLFrozenLake-v0", change_every=1, change_kind="permute")
    env.reset(seed=0, options={"task": "SFG"})  # its start is 2 moves from the goal: no min_hops check for permute
    env.reset()
    assert env.unwrapped.task.rows == ("SFG",) and env.unwrapped.task.action_permutation is not None
    paper = gym.make("ICRLFrozenLakeStitchingPaper-v0", change_every=1, change_kind="permute")
    paper.reset(seed=0)
    for _ in range(5):
        paper.reset()
        assert paper.unwrapped.task.rows[0] == "HHFF"
    assert TaskSpec(rows="SG", action_permutation=(0, 1, 2, 3)) == TaskSpec(rows="SG")


def test_bad_options_leave_the_env_untouched():
    env = gym.make("ICRLFrozenLake-v0")
    env.reset(seed=0)
    task, rng_state = env.unwrapped.task, env.unwrapped.np_random.bit_generator.state
    with pytest.raises(InvalidTaskError):
        env.reset(seed=9, options={"task": "SX/FG"})
    with pytest.raises(ValueError, match="new_task must be True or False"):
        env.reset(seed=9, options={"new_task": "no"})
    assert env.unwrapped.task == task and env.unwrapped.np_random.bit_generator.state == rng_state


def test_hand_set_np_random_still_seeds_the_task_stream():
    env = gym.make("ICRLFrozenLake-v0").unwrapped
    env.np_random = np.random.default_rng(0)
    obs, info = env.reset()
    assert 0 <= obs < env.observation_space.n and info["trial_episode"] == 0


def test_task_for_switches_at_the_nonstationary_change():
    from icrl_bench.agents import AgentSpec
    from icrl_bench.protocol import run_trials
    from icrl_bench.protocol.runner import paper_exploration_schedule
    from icrl_bench.protocol.suites import SUITES

    suite = SUITES["nonstationary"]
    first, second = suite.tasks[3]
    assert first.map_id != second.map_id
    assert [suite.task_for(3, k) for k in (0, 29, 30, 59)] == [first, first, second, second]
    assert [suite.task_index(k) for k in (0, 29, 30, 59)] == [0, 0, 1, 1]
    assert all(SUITES["id"].task_for(3, k) is SUITES["id"].tasks[3][0] for k in range(30))  # stationary: one task
    assert dataclasses.replace(suite, n_trials=2).task_for(3, 30) == second  # trials beyond the cached list
    # The forced-exploration schedule restarts with the new task.
    assert paper_exploration_schedule(suite)[18:33] == (0.9,) * 2 + (1.0,) * 10 + (0.0, 0.0, 0.1)
    # The runner plays exactly those tasks: each episode's shortest path is that of task_for's map.
    (record,) = run_trials(AgentSpec("oracle").build(), suite, [3])
    assert record.task_ids == [first.task_id, second.task_id]
    for k, e in enumerate(record.episodes):
        assert e.shortest == suite.task_for(3, k).goal_distances[e.start] and e.success == 1
    old = first.goal_distances
    assert any(e.start >= len(old) or old[e.start] != e.shortest for e in record.episodes[30:])  # not the old map
