"""The DQN trainer on tiny randomly initialised transformers (CPU, seconds)."""

import copy

import pytest
import torch

from icrl_bench.training.data import DataConfig, generate
from icrl_bench.training.dqn import DQNConfig, dqn_loss, make_batch, polyak_update, train_dqn
from icrl_bench.training.model import FIELDS, CompactQNetwork, ModelConfig

TINY = ModelConfig(d_model=16, n_layers=1, n_heads=2, max_positions=256)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.npz"
    generate(DataConfig(n_maps=8, episodes_per_map=12, seed=0, set_size=(4, 8))).save(path)
    return path


def config(data_file, out, **kw):
    return DQNConfig(data=str(data_file), out=str(out), batch_size=4, max_positions=128, log_every=1, save_every=2,
                     model=TINY, **kw)  # fmt: skip


def test_loss_falls_on_a_fixed_batch(data_file):
    from icrl_bench.training.data import Dataset

    torch.manual_seed(0)
    data = Dataset.load(data_file)
    batch = make_batch(data, [0, 1, 2, 3], 128, TINY.n_obs)
    cfg = DQNConfig(model=TINY, polyak=1.0)
    net = CompactQNetwork(TINY)
    target = copy.deepcopy(net)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss, _ = dqn_loss(net, target, batch, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_polyak_average():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = a.weight.detach().clone()
    polyak_update(a, b, 0.1)
    assert torch.allclose(a.weight, 0.9 * before + 0.1 * b.weight)


def test_batch_marks_decisions_and_cut_bootstraps(data_file):
    from icrl_bench.training.data import Dataset

    data = Dataset.load(data_file)
    full = make_batch(data, [0], 10_000, TINY.n_obs)
    cut = make_batch(data, [0], 9, TINY.n_obs)
    assert cut["mask"].shape[1] == 9 and not cut["decision"][0, -1]  # its action lies beyond the cut
    assert (cut["decision"][0, :8] <= full["decision"][0, :8]).all()
    assert int(full["decision"].sum()) == sum(len(data.episode(e)) for e in data.sequences[0])


def test_resume_continues_exactly(data_file, tmp_path):
    straight = train_dqn(config(data_file, tmp_path / "a", steps=4))
    train_dqn(config(data_file, tmp_path / "b", steps=2))
    # The config (steps included) is part of the checkpoint: to continue to 4 steps, say so in the checkpoint.
    state_b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert state_b["step"] == 2
    import json

    cfg_b = config(data_file, tmp_path / "b", steps=2)
    with pytest.raises(FileExistsError, match="--resume"):
        train_dqn(cfg_b)
    state_b["config"] = config(data_file, tmp_path / "b", steps=4).to_dict()
    torch.save(state_b, tmp_path / "b" / "checkpoint.pt")
    resumed = train_dqn(config(data_file, tmp_path / "b", steps=4), resume=True)
    a = torch.load(straight, weights_only=False)["model"]
    b = torch.load(resumed, weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "b" / "config.json").read_text())["steps"] == 4
    with pytest.raises(ValueError, match="other settings"):
        train_dqn(config(data_file, tmp_path / "b", steps=4, gamma=0.5), resume=True)


def test_cli_smoke_run(data_file, tmp_path):
    from icrl_bench.cli import main

    out = tmp_path / "run"
    args = ["train", "dqn", "--data", str(data_file), "--out", str(out), "--steps", "3", "--batch-size", "2",
            "--max-positions", "64", "--d-model", "16", "--layers", "1", "--heads", "2", "--log-every", "1"]  # fmt: skip
    assert main(args) == 0
    lines = (out / "log.csv").read_text().splitlines()
    assert lines[0] == "step,loss,q_mean,target_mean,lr,seconds" and len(lines) == 4
    assert main(args + ["--cross-episode"]) == 2  # settings differ from the existing run: refused


def test_incremental_q_values_equal_a_full_recomputation():
    from transformers import DynamicCache

    torch.manual_seed(1)
    net = CompactQNetwork(TINY).eval()
    inputs = {"prev_obs": torch.randint(0, 26, (1, 15)), "action": torch.randint(0, 5, (1, 15)),
              "reward": torch.randint(0, 3, (1, 15)), "obs": torch.randint(0, 25, (1, 15)),
              "done": torch.randint(0, 2, (1, 15)), "episode": torch.randint(0, 3, (1, 15))}  # fmt: skip
    with torch.no_grad():
        full, _ = net(inputs)
        cache = DynamicCache()
        steps = [net({f: inputs[f][:, i : i + 1] for f in FIELDS}, cache=cache)[0] for i in range(15)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_trained_agent_plays_the_protocol_incrementally(data_file, tmp_path):
    from icrl_bench.protocol import run_trials
    from icrl_bench.protocol.suites import SUITES
    from icrl_bench.training.agent import DQNAgent

    ckpt = train_dqn(config(data_file, tmp_path / "run", steps=2))
    agent = DQNAgent(str(ckpt))
    records = list(run_trials(agent, SUITES["id"], [0, 1, 2]))
    assert len(records) == 3 and all(len(r.episodes) == 30 for r in records)
    # Every Q-value the agent acted on, computed step by step with the cache, equals one full pass over the
    # trial's whole context at that position.
    with torch.no_grad():
        full, _ = agent.net(agent.history_inputs(0))
    decisions = agent.trials[0].decisions
    first = next(r for r in records if r.trial == 0)
    assert len(decisions) == sum(e.steps for e in first.episodes)  # one decision per step played
    for position, q in decisions:
        assert torch.allclose(q, full[0, position], atol=1e-4)
    # Demonstrations become context: the stitching suite runs too.
    assert len(list(run_trials(DQNAgent(str(ckpt)), SUITES["stitching-paper"], [0]))) == 1
