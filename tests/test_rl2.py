"""RL^2 (training/rl2.py): PPO with a GRU across whole trials on the numpy-batched trial env."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from icrl_bench.protocol.agent import TrialInfo
from icrl_bench.training.rl2 import RL2Config, RL2Policy, RL2RunError, _Run, relabeled, train

TINY = RL2Config(num_envs=8, num_steps=16, total_steps=8 * 16 * 4, hidden=16, n_episodes=3, eval_every=2,
                 eval_trials=2, save_every=1)  # fmt: skip


def test_a_tiny_run_logs_saves_and_its_policy_plays_through_evaluate(tmp_path):
    out = train(dataclasses.replace(TINY, out=str(tmp_path / "run")), progress=False)
    rows = (out / "log.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[0].startswith("update,steps")
    assert all((out / f).exists() for f in ("policy.pt", "best.pt", "checkpoint.pt", "config.json"))
    result = subprocess.run(
        [sys.executable, "-m", "icrl_bench.cli", "evaluate", "icrl_bench.training.rl2:rl2_agent", "--agent-arg",
         f"path={out / 'policy.pt'}", "--suites", "ood-xl", "--trials", "1", "--out", str(tmp_path / "res"),
         "--no-progress"],
        check=False, capture_output=True, text=True, timeout=300, env=os.environ | {"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]  # 100 symbols: a 5x5-trained policy plays 10x10 maps
    assert json.loads((tmp_path / "res" / "results.json").read_text())["summary"]["ood-xl"]["trials"] == 1
    with pytest.raises(RL2RunError, match="--resume"):
        train(dataclasses.replace(TINY, out=str(out)), progress=False)
    again = subprocess.run([sys.executable, "-m", "icrl_bench.cli", "train", "rl2", "--out", str(out), "--no-progress"],
                           check=False, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 2 and "holds a run: continue it with --resume" in again.stderr


def test_resume_continues_exactly(tmp_path):
    straight = train(dataclasses.replace(TINY, out=str(tmp_path / "a")), progress=False)
    half = dataclasses.replace(TINY, out=str(tmp_path / "b"), total_steps=TINY.total_steps // 2)
    train(half, progress=False)
    resumed = train(dataclasses.replace(half, total_steps=TINY.total_steps), resume=True, progress=False)
    a = torch.load(straight / "policy.pt", weights_only=False)["policy"]
    b = torch.load(resumed / "policy.pt", weights_only=False)["policy"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    log_a = [r.split(",")[4] for r in (straight / "log.csv").read_text().splitlines()]
    log_b = [r.split(",")[4] for r in (resumed / "log.csv").read_text().splitlines()]
    assert log_a == log_b  # the rollouts' success column, update by update
    with pytest.raises(RL2RunError, match="only total_steps"):
        train(dataclasses.replace(half, hidden=32), resume=True, progress=False)


def test_relabeling_moves_each_tile_to_its_trials_symbol_and_the_agent_draws_it_from_the_seed():
    obs = np.zeros((2, 10 + 6), np.float32)
    obs[0, 3] = obs[1, 5] = 1.0
    obs[:, 10 + 2] = 1.0  # previous action: kept
    symbols = np.stack([np.arange(10)[::-1], np.roll(np.arange(10), 1)])
    out = relabeled(obs, symbols, 10)
    assert out[0, :10].argmax() == 6 and out[1, :10].argmax() == 4 and out[:, :10].sum() == 2
    assert (out[:, 10:] == obs[:, 10:]).all()
    policy = RL2Policy(10 + 6, 8)
    from icrl_bench.training.rl2 import RL2Agent

    agent = RL2Agent(policy, 10)
    agent.begin_trial(TrialInfo(4, 9, 3, 100, seed=5))
    first = agent.symbols.copy()
    agent.begin_trial(TrialInfo(4, 9, 3, 100, seed=5))
    assert (agent.symbols == first).all() and sorted(first[0]) == list(range(10))
    with pytest.raises(ValueError, match="reads 10 tiles but the suite's maps have 25"):
        agent.begin_trial(TrialInfo(4, 25, 3, 100, seed=5))


def test_advantages_never_bootstrap_across_a_trials_end():
    run = _Run(dataclasses.replace(TINY, gamma=0.5, gae_lambda=1.0))
    buf = run.rollout()
    adv, value, reward, done = buf["advantage"], buf["value"], buf["reward"], buf["done"]
    for t in range(len(adv) - 1):
        for e in range(adv.shape[1]):
            following = 0.0 if done[t, e] else value[t + 1, e] + adv[t + 1, e]  # the next step's return
            expected = reward[t, e] + 0.5 * following - value[t, e]
            assert abs(adv[t, e] - expected) < 1e-5
    assert done.any()  # some trial of 3 episodes ended within 16 steps of 8 envs


def test_a_mixture_of_bases_trains_and_never_draws_an_evaluation_map(tmp_path):
    from icrl_bench.envs.trial import TrialMixVectorEnv
    from icrl_bench.protocol.suites import evaluation_map_ids
    from icrl_bench.training.rl2 import RL2RunError, make_env

    config = dataclasses.replace(TINY, out=str(tmp_path / "mix"), base="ICRLFrozenLake-v0,ICRLFrozenLakeNonStationary-v0:6")
    env = make_env(config)
    assert isinstance(env, TrialMixVectorEnv) and env.episodes_per_env.tolist() == [3] * 4 + [6] * 4
    for part in env.parts:
        assert part.env.source.banned == evaluation_map_ids()
    run = train(config, progress=False)
    assert len((run / "log.csv").read_text().splitlines()) == 1 + 4
    with pytest.raises(RL2RunError, match="ID:EPISODES"):
        make_env(dataclasses.replace(config, base="ICRLFrozenLake-v0:x"))
    with pytest.raises(RL2RunError, match="fixed stitching task"):
        make_env(dataclasses.replace(config, base="ICRLFrozenLakeStitchingPaper-v0"))


def test_only_the_boolean_options_parse_true_and_false():
    from icrl_bench.cli import build_parser

    args = build_parser().parse_args(["train", "rl2", "--out", "true", "--base", "false", "--relabel", "false"])
    assert args.out == "true" and args.base == "false" and args.relabel is False  # a folder named true stays a name
    assert build_parser().parse_args(["train", "rl2"]).relabel is True


def test_export_writes_the_checkpoints_policy_and_sampling_is_reproducible_per_trial_seed(tmp_path):
    from icrl_bench.protocol import run_trials
    from icrl_bench.protocol.suites import SUITES
    from icrl_bench.training.dqn import export_model
    from icrl_bench.training.rl2 import rl2_agent

    out = train(dataclasses.replace(TINY, out=str(tmp_path / "run"), tiles=25), progress=False)
    path = export_model(out / "checkpoint.pt", tmp_path / "m.pt")
    exported, latest = torch.load(path, weights_only=False), torch.load(out / "policy.pt", weights_only=False)
    assert exported["update"] == latest["update"] == 4 and exported["config"]["hidden"] == 16
    assert all(torch.equal(exported["policy"][k], latest["policy"][k]) for k in latest["policy"])

    def actions(sample):
        records = run_trials(rl2_agent(str(path), sample=sample), SUITES["id"], [0, 1])
        return [[(e.steps, e.success) for e in r.episodes] for r in sorted(records, key=lambda r: r.trial)]

    assert actions(True) == actions(True)  # drawn from the trial's seed
    assert actions(True) != actions(False)  # an untrained policy is near uniform: sampling differs from argmax


def test_demonstrations_are_read_as_the_agent_reads_them_and_train(tmp_path):
    """A stitching trial's first step starts from the state after its demonstrations, the same state the agent
    reaches when the runner shows them; the first observation carries the last demonstration step."""
    from icrl_bench.baselines.recurrent import TrialPolicyAgent
    from icrl_bench.envs.trial import demonstration_observations

    config = dataclasses.replace(TINY, base="ICRLFrozenLakeStitching-v0", demonstrations=True, tiles=36,
                                 out=str(tmp_path / "run"))  # fmt: skip
    run = _Run(config)
    _, info = run.env.reset(seed=config.seed)  # the same first tasks as the run's own reset
    demos = info["demonstrations"][0]
    assert demos and run.pending[0].abs().sum() > 0
    seen = []
    agent = TrialPolicyAgent(lambda x, h, start: (seen.append(x) or 0, h), 36, demonstrations=True)
    agent.begin_trial(TrialInfo(4, 36, 5, 100, seed=0))
    for demo in demos:
        for t in demo:
            agent.observe(t, demonstration=True)
    seq, last = demonstration_observations(36, demos)
    assert np.array_equal(np.stack(seen), seq)  # the agent was shown exactly these observations
    symbols = run.symbols[[0]].repeat(len(seq), 0)
    h = run.policy.encode(torch.as_tensor(relabeled(seq, symbols, 36))[:, None], torch.ones(len(seq), 1, dtype=torch.bool))
    assert torch.allclose(h[0], run.pending[0])
    assert run.obs[0, 36 + last[0]] == 1.0 and run.obs[0, 36 + 4] == last[1] and run.obs[0, 36 + 5] == last[2]
    out = train(config, progress=False)  # and a run with them trains, resumes and plays
    from icrl_bench.training.rl2 import rl2_agent

    assert rl2_agent(str(out / "policy.pt")).demonstrations
