"""The trainers (DQN offline / online / hybrid, distillation) on tiny randomly initialised transformers (CPU, seconds)."""

import json
import os

import numpy as np
import pytest
import torch

from icrl_bench.envs.task import Transition as T
from icrl_bench.training.data import Dataset
from icrl_bench.training.dqn import (
    TrainConfig,
    array_episodes,
    dataset_trials,
    distill_loss,
    dqn_loss,
    make_batch,
    paper_loss,
    play,
    train,
    trial_array,
)  # fmt: skip
from icrl_bench.training.model import FIELDS, CompactLearner, CompactQNetwork, IncrementalBatch, ModelConfig

TINY = ModelConfig(n_obs=25, d_model=16, n_layers=1, n_heads=2, max_positions=512)


@pytest.fixture(scope="module")
def trials(data_file):
    return dataset_trials(Dataset.load(data_file))


def config(data_file, out, **kw):
    base = dict(data=str(data_file), out=str(out), batch_size=4, max_positions=128, log_every=1, save_every=2,
                model=TINY, online_episodes=3, rollout_trials=2, rollout_every=2, eval_trials=2)  # fmt: skip
    return TrainConfig(**(base | kw))


def test_torch_runs_with_the_thread_count_conftest_sets():
    # conftest sets OMP_NUM_THREADS and MKL_NUM_THREADS (1 unless given) before torch is imported: oversubscribed
    # thread pools on a busy machine made the model tests about 20x slower. This fails if torch was imported first.
    assert torch.get_num_threads() <= int(os.environ["OMP_NUM_THREADS"])


def test_trial_arrays_round_trip(data_file):
    data = Dataset.load(data_file)
    episodes = [data.episode(e) for e in data.sequences[0]]
    assert array_episodes(trial_array([t for ep in episodes for t in ep])) == episodes


@pytest.mark.parametrize("objective", ["dqn", "distill"])
def test_loss_falls_on_a_fixed_batch(trials, objective):
    torch.manual_seed(0)
    batch = make_batch(trials[:4], 128, TINY.n_obs)
    cfg = TrainConfig(data="x", model=TINY, polyak=1.0)
    learner = CompactLearner(TINY)
    opt = torch.optim.Adam(learner.trainable_parameters(), lr=3e-3)
    losses = []
    for _ in range(250):
        loss, _ = dqn_loss(learner, batch, cfg) if objective == "dqn" else distill_loss(learner, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_polyak_average():
    learner = CompactLearner(TINY)
    with torch.no_grad():
        for p in learner.net.parameters():
            p.add_(1.0)
    before = [p.detach().clone() for p in learner.target.parameters()]
    learner.update_target(0.1)
    for t, b, o in zip(learner.target.parameters(), before, learner.net.parameters()):
        assert torch.allclose(t, 0.9 * b + 0.1 * o)


def test_batch_marks_decisions_and_cut_bootstraps(trials):
    full = make_batch(trials[:1], 10_000, TINY.n_obs)
    cut = make_batch(trials[:1], 9, TINY.n_obs)
    assert cut["mask"].shape[1] == 9 and not cut["decision"][0, -1]  # its action lies beyond the cut
    assert torch.equal(cut["decision"][0, :8], full["decision"][0, :8])
    assert int(full["decision"].sum()) == len(trials[0])  # one decision per step
    for key in ("next_in", "next_across"):  # bootstraps stay inside the cut
        assert int(cut[key].max()) <= 8 and torch.equal(cut[key][0, :8], full[key][0, :8])


def test_dqn_loss_matches_the_numpy_reference(trials):
    from icrl_bench.training.formats import compact_sequence, td_targets

    torch.manual_seed(3)
    learner = CompactLearner(TINY)
    learner.target = CompactQNetwork(TINY)  # another network, so that online and target differ
    batch = make_batch(trials[:1], 10_000, TINY.n_obs)
    for cross in (False, True):
        cfg = TrainConfig(data="x", model=TINY, cross_episode=cross, loss="paper", reward_scale=30.0)
        _, stats = dqn_loss(learner, batch, cfg)
        with torch.no_grad():
            q, q_t = (m({f: batch[f] for f in FIELDS})[0][0].numpy() for m in (learner.net, learner.target))
        y = td_targets(compact_sequence(array_episodes(trials[0]), TINY.n_obs), q, q_t, 0.9, 30.0, cross)
        assert stats["target_mean"] == pytest.approx(np.nanmean(y), rel=1e-4)


def test_resume_continues_exactly(data_file, tmp_path):
    for mode in ("offline", "online", "hybrid"):
        straight = train(config(data_file, tmp_path / f"a-{mode}", steps=4, mode=mode))
        train(config(data_file, tmp_path / f"b-{mode}", steps=2, mode=mode))
        with pytest.raises(FileExistsError, match="--resume"):
            train(config(data_file, tmp_path / f"b-{mode}", steps=2, mode=mode))
        log = tmp_path / f"b-{mode}" / "log.csv"
        with log.open("a") as f:  # as if the run died after logging step 3 but before saving it
            f.write("3,9,9,9,9,9,9,,,\n")
        resumed = train(config(data_file, tmp_path / f"b-{mode}", steps=4, mode=mode), resume=True)  # more steps
        rows = [r.split(",") for r in log.read_text().splitlines()[1:]]
        assert [r[0] for r in rows] == ["1", "2", "3", "4"] and rows[2][1] != "9"  # the stale row is gone
        assert [float(r[5]) for r in rows] == sorted(float(r[5]) for r in rows)  # the clock runs on
        a, b = (torch.load(p, weights_only=False) for p in (straight, resumed))
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), mode
        assert len(a["replay"]) == len(b["replay"]) and all(np.array_equal(x, y) for x, y in zip(a["replay"], b["replay"]))
    assert json.loads((tmp_path / "b-online" / "config.json").read_text())["steps"] == 4
    with pytest.raises(ValueError, match="other settings.*gamma"):
        train(config(data_file, tmp_path / "b-online", steps=4, mode="online", gamma=0.5), resume=True)


def test_online_maps_avoid_the_evaluation_maps_and_grow_the_replay(data_file, tmp_path):
    from icrl_bench.protocol.suites import evaluation_map_ids, training_suite
    from icrl_bench.training.dqn import ONLINE_TRIALS_FROM, fresh_trials

    chosen, after = fresh_trials("id", ONLINE_TRIALS_FROM, 50)
    assert len(chosen) == 50 and after > chosen[-1]
    assert not {training_suite("id").trial_tasks(k)[0].map_id for k in chosen} & evaluation_map_ids()
    ckpt = train(config(data_file, tmp_path / "run", steps=4, mode="online", data=""))  # online without data
    state = torch.load(ckpt, weights_only=False)
    assert len(state["replay"]) == 4 and state["next_trial"] > ONLINE_TRIALS_FROM  # 2 rollouts of 2 trials


def test_play_matches_the_protocol_and_respects_the_cap():
    from icrl_bench.protocol import run_trials
    from icrl_bench.protocol.suites import training_suite
    from icrl_bench.training.agent import DQNAgent

    torch.manual_seed(0)
    net = CompactQNetwork(TINY).eval()
    success, arrays = play(net, "id", [5, 6, 7], episodes=4, seed=1)
    suite = training_suite("id")
    import dataclasses

    suite = dataclasses.replace(suite, n_episodes=4, n_trials=0)
    records = sorted(run_trials(DQNAgent(net=net), suite, [5, 6, 7], seed=1), key=lambda r: r.trial)
    assert success.tolist() == [[e.success for e in r.episodes] for r in records]
    assert [len(a) for a in arrays] == [sum(e.steps for e in r.episodes) for r in records]
    _, capped = play(net, "id", [5, 6, 7], episodes=4, seed=1, max_positions=10)
    assert all(len(a) <= 9 for a in capped)


def test_cli_smoke_runs_of_both_trainers(data_file, tmp_path):
    from icrl_bench.cli import main

    small = ["--batch-size", "2", "--max-positions", "64", "--d-model", "16", "--layers", "1", "--heads", "2",
             "--log-every", "1", "--quiet", "--online-episodes", "3", "--rollout-trials", "2", "--eval-every", "3",
             "--eval-trials", "2"]  # fmt: skip
    for command, mode in (("dqn", "offline"), ("dqn", "online"), ("dqn", "hybrid"), ("distill", "offline"),
                          ("distill", "hybrid")):  # fmt: skip
        out = tmp_path / f"{command}-{mode}"
        args = ["train", command, "--mode", mode, "--data", str(data_file), "--out", str(out), "--steps", "3"]
        args += ["--teacher", "explorer"] if command == "distill" and mode != "offline" else []
        assert main(args + small) == 0, (command, mode)
        lines = (out / "log.csv").read_text().splitlines()
        assert lines[0].startswith("step,loss,q_mean,target_mean,lr,seconds,replay_trials,eval_auc") and len(lines) == 4
        assert lines[-1].count(",") == 9 and lines[-1].split(",")[-3] != ""  # the quick evaluation ran
        assert json.loads((out / "config.json").read_text())["objective"] == command
    out = tmp_path / "dqn-offline"
    base = ["train", "dqn", "--data", str(data_file), "--out", str(out), "--steps", "3"] + small
    assert main(base) == 2  # exists: refused without --resume
    assert main(base + ["--cross-episode", "--resume"]) == 2  # other settings: refused
    assert main(["train", "dqn", "--mode", "offline", "--out", str(tmp_path / "x")] + small) == 2  # no data
    assert main(["train", "distill", "--mode", "online", "--out", str(tmp_path / "x")] + small) == 2  # no teacher
    with pytest.raises(SystemExit):  # a DAgger teacher is not even offered to DQN
        main(["train", "dqn", "--mode", "online", "--teacher", "explorer", "--out", str(tmp_path / "x")] + small)
    assert main(["train", "dqn", "--mode", "online", "--suite", "id,nope", "--out", str(tmp_path / "y")] + small) == 2
    assert main(["train", "dqn", "--mode", "online", "--polyak", "2", "--out", str(tmp_path / "z")] + small) == 2


def test_dagger_labels_are_the_teachers_actions_on_the_networks_own_states():
    from icrl_bench.baselines import ExplorerAgent
    from icrl_bench.protocol.agent import TrialInfo
    from icrl_bench.protocol.suites import training_suite

    torch.manual_seed(0)
    net = CompactQNetwork(TINY).eval()
    _, (array,) = play(net, "id", [3], episodes=3, seed=2, teacher="explorer")
    # Replaying the teacher on the recorded transitions gives the same labels; the network chose the actions.
    suite = training_suite("id")
    task = suite.trial_tasks(3)[0]
    teacher = ExplorerAgent()
    teacher.begin_trial(TrialInfo(4, task.n_tiles, 3, task.max_steps, suite.trial_seeds(2, 3)[1]))
    for o, a, r, n, te, tr, label in array.tolist():
        assert teacher.act(o) == label
        teacher.observe(T(o, a, float(r), n, bool(te), bool(tr)))
    batch = make_batch([array], 10_000, TINY.n_obs)
    assert batch["label"][0, : len(array)].tolist() == array[:, 6].tolist()


def test_incremental_q_values_equal_a_full_recomputation():
    torch.manual_seed(1)
    net = CompactQNetwork(TINY).eval()
    highs = {"prev_obs": 26, "action": 5, "reward": 3, "landed": 26, "done": 2, "obs": 25, "episode": 3}
    inputs = {f: torch.randint(0, highs[f], (2, 15)) for f in FIELDS}
    with torch.no_grad():
        full, _ = net(inputs)
    # Two sequences fed raggedly (padding in between), and with a window: every real position sees its history.
    batch = IncrementalBatch(net, 2)
    feeds = [(3, 1), (0, 4), (5, 0), (1, 2), (6, 8)]
    done = [0, 0]
    for a, b in feeds:
        rows = [[tuple(int(inputs[f][s, i]) for f in FIELDS) for i in range(done[s], done[s] + n)] for s, n in ((0, a), (1, b))]
        q = batch.feed(rows)
        for s, n in ((0, a), (1, b)):
            done[s] += n
            if n:
                assert torch.allclose(q[s], full[s, done[s] - 1], atol=1e-5)
    assert done == [15, 15]


def test_trained_agent_plays_the_protocol_incrementally(data_file, tmp_path):
    from icrl_bench.protocol import run_trials
    from icrl_bench.protocol.suites import SUITES
    from icrl_bench.training.agent import DQNAgent

    ckpt = train(config(data_file, tmp_path / "run", steps=2))
    agent = DQNAgent(str(ckpt), trace=True, window=0)
    records = sorted(run_trials(agent, SUITES["id"], list(range(12))), key=lambda r: r.trial)  # compacts midway
    assert len(records) == 12 and all(len(r.episodes) == 30 for r in records)
    for trial in (0, 11):
        # Every Q-value the agent acted on, computed step by step with the shared cache, equals one full pass
        # over the trial's whole context at that position.
        with torch.no_grad():
            full, _ = agent.net(agent.history_inputs(trial))
        decisions = agent.decisions[trial]
        assert len(decisions) == sum(e.steps for e in records[trial].episodes)  # one decision per step played
        for position, q in decisions:
            assert torch.allclose(q, full[0, position], atol=1e-4)
    # Demonstrations become context: the stitching suite runs too; a window bounds the context.
    assert len(list(run_trials(DQNAgent(str(ckpt)), SUITES["stitching-paper"], [0]))) == 1
    windowed = DQNAgent(str(ckpt), window=16)
    list(run_trials(windowed, SUITES["id"], [0, 1]))
    assert windowed.batch.mask.shape[1] < 16 + 64 + 2


def test_agent_rejects_a_broken_checkpoint_and_a_too_large_suite(tmp_path, data_file):
    from icrl_bench.protocol import run_trials
    from icrl_bench.protocol.runner import AgentError
    from icrl_bench.protocol.suites import SUITES
    from icrl_bench.training.agent import DQNAgent

    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not an icrl-bench checkpoint"):
        DQNAgent(str(bad))
    ckpt = train(config(data_file, tmp_path / "run", steps=1))  # TINY sees 25 observations
    with pytest.raises((ValueError, AgentError), match="sees 25 observations"):
        list(run_trials(DQNAgent(str(ckpt)), SUITES["ood-large"], [0]))


def test_the_paper_loss_is_sane_for_targets_of_any_sign():
    q, y = torch.tensor([0.0, 0.0]), torch.tensor([-1.0, -2.0])
    assert paper_loss(q, y).item() == pytest.approx((1 + 4) / 2 / 1.5**2)  # was 2.5e6 (mean y clamped to 1e-3)
    assert paper_loss(q, y).item() == pytest.approx(paper_loss(-q, -y).item())
    assert paper_loss(torch.tensor([1.0]), torch.tensor([2.0])).item() == pytest.approx(0.25)  # the paper's, y > 0


def test_the_target_network_never_trains(data_file, tmp_path):
    from icrl_bench.training.dqn import _State

    cfg = config(data_file, tmp_path / "t")
    state = _State(cfg, CompactLearner(cfg.model))  # backbones with dropout (gpt2) would otherwise give noisy targets
    target = state.learner.target
    assert not target.training and not any(p.requires_grad for p in target.parameters())
    state.save(tmp_path / "c.pt", cfg)
    target.train()
    state.load(tmp_path / "c.pt", cfg)
    assert not target.training


def test_relabeling_is_one_consistent_map_of_tiles_and_actions():
    from icrl_bench.training.formats import Relabeling

    label = Relabeling.draw(np.random.default_rng(0), 40)
    array = trial_array([T(0, 2, 0.0, 1, False, False), T(1, 1, 1.0, 24, True, False)], labels=[3, -1])
    out = label.trial(array)
    for row, t in zip(out, array_episodes(array)[0]):
        shown = label.transition(t)
        assert tuple(row[:6]) == (shown.obs, shown.action, int(shown.reward > 0), shown.next_obs, shown.terminated,
                                  shown.truncated)  # fmt: skip
    assert out[0, 6] == label.actions[3] and out[1, 6] == -1  # teacher labels too; "none" stays none
    assert all(label.env_action(int(label.actions[a])) == a for a in range(4))
    assert len(set(label.symbols[:25].tolist())) == 25 and label.symbols.max() < 40  # an injection
    assert (Relabeling.for_trial(7, 40).symbols == Relabeling.for_trial(7, 40).symbols).all()


def test_a_relabeled_network_trains_and_plays_maps_larger_than_its_training_maps(data_file, tmp_path):
    from icrl_bench.protocol import run_trials
    from icrl_bench.protocol.suites import SUITES
    from icrl_bench.training.agent import DQNAgent
    from icrl_bench.training.formats import Relabeling

    with pytest.raises(ValueError, match="relabel=200"):
        config(data_file, tmp_path / "bad", relabel=200)
    model = ModelConfig(n_obs=100, d_model=16, n_layers=1, n_heads=2, max_positions=512)
    ckpt = train(config(data_file, tmp_path / "run", steps=4, mode="hybrid", relabel=100, model=model, eval_every=4),
                 progress=False)  # fmt: skip
    agent = DQNAgent(str(ckpt), trace=True, window=0, record=True)
    assert agent.relabel == 100  # from the checkpoint
    (record,) = run_trials(agent, SUITES["ood-xl"], [3])  # 10x10 maps: tile numbers never trained on, as symbols
    label = Relabeling.for_trial(record.agent_seed, 100)
    played = agent.trajectories[0]
    assert len(played) == sum(e.steps for e in record.episodes)
    for (position, q), t in zip(agent.decisions[0], played):  # decides on relabeled symbols, plays env actions
        assert agent.history[0][position][FIELDS.index("obs")] == label.symbols[t.obs]
        assert label.env_action(int(torch.argmax(q))) == t.action


def test_rollouts_take_several_suites_in_turn_and_keep_demonstrations_as_context(data_file, tmp_path):
    from icrl_bench.protocol.suites import training_suite

    wide = ModelConfig(n_obs=36, d_model=16, n_layers=1, n_heads=2, max_positions=512)  # stitching maps: up to 6x6
    net = CompactQNetwork(wide).eval()
    success, arrays = play(net, "stitching", [0, 1], episodes=2)
    suite = training_suite("stitching")
    for k, array in zip([0, 1], arrays):
        task = suite.trial_tasks(k)[0]
        shown = [t for d in task.demonstrations for t in task.rollout(d)]
        assert len(shown) > 0
        lead = array_episodes(array[: len(shown)])
        assert [(t.obs, t.action, t.next_obs) for ep in lead for t in ep] == [(t.obs, t.action, t.next_obs) for t in shown]
        assert (array[: len(shown), 6] == array[: len(shown), 1]).all()  # labelled with the demonstrator's actions
    assert success.shape == (2, 2)
    assert play(CompactQNetwork(TINY).eval(), "nonstationary", [0], episodes=0)[0].shape == (1, 60)  # its own 60
    with pytest.raises(KeyError, match="unknown suite 'nope'"):
        train(config(data_file, tmp_path / "bad", mode="hybrid", suite="id,nope"), progress=False)
    ckpt = train(config(data_file, tmp_path / "run", steps=3, mode="hybrid", rollout_every=1, model=wide,
                        suite="id,stitching,nonstationary", eval_every=0), progress=False)  # fmt: skip
    state = torch.load(ckpt, weights_only=False)
    assert len(state["replay"]) == 3 * 2  # a rollout of 2 trials from each suite in turn (hybrid: no seeded data)
