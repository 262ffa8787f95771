"""The compact format's decision points and targets, worked out by hand."""

import numpy as np
import pytest

from icrl_bench.envs.task import Transition as T
from icrl_bench.training.formats import NO_ACTION, NO_REWARD, compact_sequence, td_targets

# Episode 0: 0 -right-> 1 -down-> 4 (goal). Episode 1: 0 -down-> 3, truncated there (step limit).
EPISODES = [
    [T(0, 2, 0.0, 1, False, False), T(1, 1, 1.0, 4, True, False)],
    [T(0, 1, 0.0, 3, False, True)],
]


def test_positions_and_decision_points():
    s = compact_sequence(EPISODES, n_obs=9)
    # Positions: reset(0) | 0->1 | 1->4 (end) | reset(0) | 0->3 (end)
    assert s.obs.tolist() == [0, 1, 4, 0, 3]
    assert s.prev_obs.tolist() == [9, 0, 1, 9, 0]
    assert s.action.tolist() == [NO_ACTION, 2, 1, NO_ACTION, 1]
    assert s.reward.tolist() == [NO_REWARD, 0, 1, NO_REWARD, 0]
    assert s.done.tolist() == [0, 0, 1, 0, 1]
    assert s.episode.tolist() == [0, 0, 0, 1, 1]
    assert s.decision.tolist() == [True, True, False, True, False]
    assert s.taken.tolist() == [2, 1, -1, 1, -1]
    assert s.gained.tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert s.ends_episode.tolist() == [False, True, False, True, False]
    assert s.next_in_episode.tolist() == [1, -1, -1, -1, -1]
    # Cross-episode: the goal-reaching action bootstraps from the next episode's start; the sequence's last
    # action (the truncation) does not bootstrap.
    assert s.next_across.tolist() == [1, 3, -1, -1, -1]


def test_double_dqn_targets_per_episode_and_across():
    s = compact_sequence(EPISODES, n_obs=9)
    q_online = np.array([[0, 0, 0, 0], [5, 1, 0, 0], [0] * 4, [0, 0, 0, 7], [0] * 4], dtype=float)
    q_target = np.array([[0, 0, 0, 0], [2, 9, 9, 9], [0] * 4, [3, 3, 3, 4], [0] * 4], dtype=float)
    y = td_targets(s, q_online, q_target, gamma=0.9, reward_scale=30.0)
    # Position 0 bootstraps from 1: online argmax is action 0, scored by the target net: 0.9 * 2.
    assert y[0] == pytest.approx(1.8) and y[1] == 30.0 and y[3] == 0.0
    assert np.isnan(y[[2, 4]]).all()
    y = td_targets(s, q_online, q_target, gamma=0.9, reward_scale=30.0, cross_episode=True)
    assert y[1] == pytest.approx(30.0 + 0.9 * 4.0)  # argmax at position 3 is action 3
    assert y[3] == 0.0


def test_broken_episodes_are_rejected():
    with pytest.raises(ValueError, match="no transitions"):
        compact_sequence([[]], 9)
    with pytest.raises(ValueError, match="does not follow"):
        compact_sequence([[T(0, 2, 0.0, 1, False, False), T(5, 2, 0.0, 6, True, False)]], 9)


def test_a_generated_dataset_formats_cleanly():
    from icrl_bench.training.data import DataConfig, generate

    data = generate(DataConfig(n_maps=3, episodes_per_map=6, seed=2))
    seq = compact_sequence([data.episode(e) for e in data.sequences[0]], n_obs=25)
    n_steps = sum(len(data.episode(e)) for e in data.sequences[0])
    assert len(seq) == n_steps + len(data.sequences[0]) and seq.decision.sum() == n_steps
