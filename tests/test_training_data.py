import dataclasses

import numpy as np
import pytest

from icrl_bench.protocol import evaluation_map_ids
from icrl_bench.training.data import DataConfig, Dataset, DatasetError, generate


def test_generated_histories_are_real_trials_on_disjoint_training_maps(tmp_path):
    data = generate(DataConfig(n_maps=12, episodes_per_map=20, seed=1))
    assert len(data.maps) == 12 and data.n_episodes == 12 * 20
    assert not {m.map_id for m in data.maps} & evaluation_map_ids()
    for e in range(data.n_episodes):
        episode = data.episode(e)
        task = data.maps[data.episode_map[e]]
        assert task.tile(episode[0].obs) == "S"
        assert all(a.next_obs == b.obs for a, b in zip(episode, episode[1:]))  # contiguous
        assert episode[-1].terminated or episode[-1].truncated
        assert not any(t.terminated or t.truncated for t in episode[:-1])
        for t in episode:  # the map's deterministic dynamics
            assert t.next_obs == task.move(t.obs, task.direction(t.action))
            assert t.reward == (1.0 if task.tile(t.next_obs) == "G" else 0.0)
    # Sets: 4 per map, 20-40 episodes of one map each.
    assert len(data.sequences) == 48
    for seq in data.sequences:
        assert 20 <= len(seq) <= 40 and len(set(data.episode_map[seq])) == 1
    path = tmp_path / "d.npz"
    data.save(path)
    again = Dataset.load(path)
    assert again.maps == data.maps and all((a == b).all() for a, b in zip(again.sequences, data.sequences))
    assert again.meta == data.meta and again.episode(7) == data.episode(7)


def test_same_seed_same_data_and_learning_layout_keeps_order():
    a = generate(DataConfig(n_maps=5, episodes_per_map=10, seed=3, layout="learning", learner="explorer"))
    b = generate(DataConfig(n_maps=5, episodes_per_map=10, seed=3, layout="learning", learner="explorer"))
    assert all((x == y).all() for x, y in zip(a.sequences, b.sequences))
    assert all((a.transitions[k] == b.transitions[k]).all() for k in a.transitions)
    assert [s.tolist() for s in a.sequences] == [list(range(10 * m, 10 * m + 10)) for m in range(5)]


def test_quality_variants_shift_the_share_of_successes():
    rates = {}
    for quality in ("low", "mid", "high"):
        data = generate(DataConfig(n_maps=30, episodes_per_map=30, seed=0, quality=quality))
        won = data.success()
        rates[quality] = np.mean([won[s].mean() for s in data.sequences])
    assert rates["low"] < rates["mid"] - 0.1 and rates["high"] > rates["mid"] + 0.05


def test_bad_configs_and_files(tmp_path):
    with pytest.raises(DatasetError, match="layout must be one of"):
        DataConfig(layout="random")
    (tmp_path / "x.npz").write_bytes(b"not a dataset")
    with pytest.raises(DatasetError, match="not an icrl-bench dataset"):
        Dataset.load(tmp_path / "x.npz")


def test_cli_generates_a_dataset(tmp_path):
    from icrl_bench.cli import main

    out = tmp_path / "data" / "train.npz"
    assert main(["data", "generate", "--out", str(out), "--n-maps", "6", "--episodes", "8", "--learner", "mixed"]) == 0
    data = Dataset.load(out)
    assert len(data.maps) == 6 and data.meta["config"]["learner"] == "mixed"


def test_data_is_played_by_the_protocols_runner_and_follows_a_suites_mid_trial_change():
    from icrl_bench.baselines import ExplorerAgent
    from icrl_bench.protocol import run_trials
    from icrl_bench.protocol.suites import training_suite

    data = generate(DataConfig(n_maps=3, episodes_per_map=40, seed=2, layout="learning", learner="explorer",
                               suite="nonstationary"))  # fmt: skip
    suite = training_suite("nonstationary", 6)
    assert suite.change_after is not None and suite.change_after < 40
    assert len(data.maps) == 2 * 3  # each trial's map before and after the change
    for m, sequence in enumerate(data.sequences):
        before, after = 2 * m, 2 * m + 1
        assert data.episode_map[sequence].tolist() == [before] * suite.change_after + [after] * (40 - suite.change_after)
    # The same learner through run_trials itself gives the same episodes (one loop, not two held equal).
    (record,) = run_trials(ExplorerAgent(), dataclasses.replace(suite, n_episodes=40), [0], seed=2)
    first = [data.episode(e) for e in data.sequences[0]]
    assert [len(ep) for ep in first] == [e.steps for e in record.episodes]
    assert [float(ep[-1].reward) for ep in first] == [float(e.success) for e in record.episodes]
    assert data.maps[0].task_id == record.task_ids[0] and data.maps[1].task_id == record.task_ids[1]


def test_a_stitching_trials_demonstrations_lead_its_learning_sequence():
    data = generate(DataConfig(n_maps=2, episodes_per_map=5, seed=0, layout="learning", learner="explorer",
                               suite="stitching"))  # fmt: skip
    assert data.meta["demonstration_episodes"] == sum(len(s) for s in data.sequences) - 2 * 5 > 0
    first = data.sequences[0]
    task = data.maps[data.episode_map[first[0]]]
    shown = [task.rollout(d) for d in task.demonstrations]
    assert len(shown) > 0 and len(first) == len(shown) + 5
    for e, demo in zip(first, shown):
        episode = data.episode(e)
        assert [(t.obs, t.action, t.next_obs) for t in episode] == [(t.obs, t.action, t.next_obs) for t in demo]
        assert episode[-1].terminated or episode[-1].truncated  # an open demonstration is closed as truncated
