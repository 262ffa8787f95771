"""The compact format's decision points and targets, worked out by hand."""

import numpy as np
import pytest

from icrl_bench.envs.task import Transition as T
from icrl_bench.training.formats import NO_ACTION, NO_REWARD, compact_sequence, position_rows, td_targets

# Episode 0: 0 -right-> 1 -down-> 4 (goal). Episode 1: 0 -down-> 3, truncated there (step limit).
EPISODES = [
    [T(0, 2, 0.0, 1, False, False), T(1, 1, 1.0, 4, True, False)],
    [T(0, 1, 0.0, 3, False, True)],
]


def test_positions_and_decision_points():
    s = compact_sequence(EPISODES, n_obs=9)
    # Positions: start (in 0) | 0->1 (in 1) | 1->4 goal (next decision: episode 1's start, 0) | 0->3 truncated
    assert s.prev_obs.tolist() == [9, 0, 1, 0]
    assert s.action.tolist() == [NO_ACTION, 2, 1, 1]
    assert s.reward.tolist() == [NO_REWARD, 0, 1, 0]
    assert s.landed.tolist() == [9, 1, 4, 3]
    assert s.done.tolist() == [0, 0, 1, 1]
    assert s.obs.tolist() == [0, 1, 0, 3]
    assert s.episode.tolist() == [0, 0, 1, 2]
    assert s.decision.tolist() == [True, True, True, False]
    assert s.taken.tolist() == [2, 1, 1, -1]
    assert s.gained.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert s.ends_episode.tolist() == [False, True, True, False]
    assert s.next_in_episode.tolist() == [1, -1, -1, -1]
    # Cross-episode: the goal-reaching action bootstraps from the next episode's first decision; the sequence's
    # last action (the truncation) does not bootstrap.
    assert s.next_across.tolist() == [1, 2, -1, -1]


def test_double_dqn_targets_per_episode_and_across():
    s = compact_sequence(EPISODES, n_obs=9)
    q_online = np.array([[0, 0, 0, 0], [5, 1, 0, 0], [0, 0, 0, 7], [0] * 4], dtype=float)
    q_target = np.array([[0, 0, 0, 0], [2, 9, 9, 9], [3, 3, 3, 4], [0] * 4], dtype=float)
    y = td_targets(s, q_online, q_target, gamma=0.9, reward_scale=30.0)
    # Position 0 bootstraps from 1: the online argmax is action 0, scored by the target net: 0.9 * 2.
    assert y[0] == pytest.approx(1.8) and y[1] == 30.0 and y[2] == 0.0
    assert np.isnan(y[3])
    y = td_targets(s, q_online, q_target, gamma=0.9, reward_scale=30.0, cross_episode=True)
    assert y[1] == pytest.approx(30.0 + 0.9 * 4.0)  # the argmax at position 2 is action 3
    assert y[2] == 0.0  # the last action of the sequence


def test_a_trial_cut_inside_an_episode_keeps_bootstrapping():
    s = compact_sequence([[T(0, 2, 0.0, 1, False, False), T(1, 1, 0.0, 2, False, False)]], n_obs=9)
    assert s.decision.tolist() == [True, True, False]
    assert s.next_in_episode.tolist() == [1, 2, -1] and s.next_across.tolist() == [1, 2, -1]


def test_agent_rows_equal_the_sequence_rows():
    # What the agent feeds step by step is exactly what training reads.
    flat = EPISODES[0] + EPISODES[1]
    s = compact_sequence(EPISODES, n_obs=9)
    rows, episode = position_rows(flat[:2], 9, 0, 0, 0)  # the agent learns episode 1's start from act(obs=0)
    more, episode = position_rows(flat[2:], 9, None, None, episode)
    cols = np.array(rows + more).T
    for i, name in enumerate(("prev_obs", "action", "reward", "landed", "done", "obs", "episode")):
        assert cols[i].tolist() == getattr(s, name).tolist(), name
    assert episode == 2


def test_broken_episodes_are_rejected():
    with pytest.raises(ValueError, match="no transitions"):
        compact_sequence([[]], 9)
    with pytest.raises(ValueError, match="does not follow"):
        compact_sequence([[T(0, 2, 0.0, 1, False, False), T(5, 2, 0.0, 6, True, False)]], 9)
    with pytest.raises(ValueError, match="another follows"):
        compact_sequence([[T(0, 2, 0.0, 1, False, False)], [T(0, 2, 0.0, 1, True, False)]], 9)
    with pytest.raises(ValueError, match="ends before its last"):
        compact_sequence([[T(0, 2, 0.0, 1, True, False), T(1, 2, 0.0, 2, True, False)]], 9)


def test_a_generated_dataset_formats_cleanly():
    from icrl_bench.training.data import DataConfig, generate

    data = generate(DataConfig(n_maps=3, episodes_per_map=6, seed=2))
    seq = compact_sequence([data.episode(e) for e in data.sequences[0]], n_obs=25)
    n_steps = sum(len(data.episode(e)) for e in data.sequences[0])
    assert len(seq) == n_steps + 1 and seq.decision.sum() == n_steps
