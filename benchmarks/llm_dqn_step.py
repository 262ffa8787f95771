"""What the LLM agent's three shortcuts buy: the lean Q head, the KV cache, batched trials (ratios, same run).

    python benchmarks/llm_dqn_step.py [--model smollm2-135m] [--threads 1] [--tokens 1024] [--repeats 3] [--check]
    python benchmarks/llm_dqn_step.py --tiny        # the tests' tiny random Llama: a smoke run, the ratios mean little

(a) One DQN update of `TextQNetwork` (online forward with gradients, target forward without, backward, gradient
    clip, AdamW step, Polyak) on 2 sequences of `--tokens` tokens, with the lean head (the final hidden states at the
    decision slots times the four LM-head rows of the action words) against a naive one that computes the
    full-vocabulary logits over the whole sequence (``model(input_ids).logits``) and then picks the four action
    columns at the slots. Each variant runs in a fresh subprocess: its peak memory is the growth of the process's
    peak RSS over the updates (the kernel's high-water mark is reset first where Linux allows; else
    `resource.getrusage`), or `torch.cuda.max_memory_allocated` on a GPU. Target: lean >= 1.25x the tokens/s, with
    a lower peak.
(b) Agent decisions/s at episode 30 of a trial (29 episodes of context already fed): `DQNAgent` (KV cache, only the
    ~3 new tokens a step) against re-encoding the whole history at every step. Target: >= 10x.
(c) The same decisions with 16 trials in one `DQNAgent` (one forward pass a step for all) against one trial at a
    time. Target: >= 4x.
(a) also times the CPU recipe's update (`--top-layers`, default 6: LoRA on every linear map of the top layers
    only): once with the frozen lower layers' output kept from an earlier update (a trial seen before), once with
    it recomputed (a trial never seen); printed as ratios to the lean update with adapters in every layer.

The trials are Q-learning histories of 32 episodes (`icrl-bench data generate --layout learning --episodes 32`,
generated here in a second unless `--data` names a dataset): the timed decisions start at episode 30 and run on into
the next episodes where it is short; (a) joins whole trials until a sequence is long enough. The network is the
`smollm2-cpu` preset's (plain format, LoRA, bf16 autocast) with the offset fixed at 0.
Ratios are information: the exit status is 0 unless `--check` is given and a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"lean": 1.25, "cache": 10.0, "batch": 4.0}
SPLIT = ("split", "split-cold")  # (a) with adapters in the top layers only: lower states cached, or recomputed
ALL_LINEAR = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


# ---------------------------------------------------------------------------------------------- setting up


def build(args: argparse.Namespace, naive: bool = False) -> Any:
    """The network of the run (`NaiveQNetwork` for the naive head), on the GPU where there is one."""
    import torch

    from icrl_bench.training.config import LLMConfig
    from icrl_bench.training.text_model import TextQNetwork

    cls = naive_class() if naive else TextQNetwork
    split = {"top_layers": args.top_layers, "target_modules": ALL_LINEAR} if args.child in SPLIT else {}
    config = LLMConfig(model=args.model, adapter=args.adapter, precision=args.precision, text_format=args.text_format,
                       q_offset="0", **split)  # fmt: skip
    if args.tiny:
        sys.path.insert(0, str(ROOT / "tests"))
        import tiny_llm

        net = cls(config, model=tiny_llm.model(), tokenizer=tiny_llm.tokenizer())
    else:
        net = cls(config)
    return net.to("cuda") if torch.cuda.is_available() else net


def naive_class() -> type:
    """`TextQNetwork` reading Q from the full-vocabulary logits over the whole sequence (what the lean head avoids)."""
    import torch

    from icrl_bench.training.text_model import TextQNetwork

    class NaiveQNetwork(TextQNetwork):
        def q_values(self, batch: dict[str, torch.Tensor], target: bool = False) -> torch.Tensor:
            if target:
                self._use("target")
            try:
                with torch.no_grad() if target else contextlib.nullcontext(), self._autocast():
                    logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                        use_cache=False).logits  # [batch, tokens, vocabulary]  # fmt: skip
                    at_slots = logits.gather(1, batch["slots"].unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
                    return at_slots[..., self.action_ids].float() - self.q_offset
            finally:
                if target:
                    self._use("online")

    return NaiveQNetwork


def trials(args: argparse.Namespace, maps: int) -> list[Any]:
    """Trial arrays: the dataset's, or Q-learning histories of 32 episodes on `maps` maps generated here
    (deterministic: the same first trials whatever `maps`)."""
    from icrl_bench.training.data import DataConfig, Dataset, generate
    from icrl_bench.training.dqn import dataset_trials

    if args.data:
        return dataset_trials(Dataset.load(args.data))
    return dataset_trials(generate(DataConfig(n_maps=maps, episodes_per_map=32, layout="learning", seed=0)))


def long_sequences(net: Any, arrays: list[Any], count: int, tokens: int) -> list[Any]:
    """`count` sequences of at least `tokens` tokens, each whole trials joined end to end (maps change between)."""
    import numpy as np

    out, parts, k = [], [], 0
    while len(out) < count:
        if k >= len(arrays):
            raise SystemExit(f"the trials hold fewer than {count} x {tokens:,} tokens; pass fewer --tokens")
        parts.append(arrays[k])
        k += 1
        joined = np.concatenate(parts)
        if len(net.encode(_transitions(joined))[0]) >= tokens:
            out.append(joined)
            parts = []
    return out


def _transitions(array: Any) -> list[Any]:
    from icrl_bench.training.dqn import array_episodes

    return [t for e in array_episodes(array) for t in e]


# ---------------------------------------------------------------------------------------------- (a) one update


def _rss_now() -> int:
    """Resident bytes now (0 where /proc is missing)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    """Peak resident bytes of this process (since the last reset where there was one)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def update_child(args: argparse.Namespace) -> dict[str, Any]:
    """(a) for one variant, in this (fresh) process: seconds per update, peak memory growth, the losses."""
    import gc

    import torch

    from icrl_bench.training.config import TrainConfig
    from icrl_bench.training.dqn import update

    net = build(args, naive=args.child == "naive")
    net.train()
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    sequences = long_sequences(net, trials(args, 4 + 2 * args.tokens // 500), 2, args.tokens)
    batch = {k: v.to(device) for k, v in net.batch(sequences, args.tokens).items()}
    cfg = TrainConfig(network="llm", data="x", reward_scale=30.0, lr=1e-3)
    params = net.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


    def one_update() -> float:
        nonlocal batch
        if args.child == "split-cold":  # the frozen lower layers run again, as for a trial never seen
            net.forget_lower_states()
        if args.child in SPLIT:
            batch = {k: v.to(device) for k, v in net.batch(sequences, args.tokens).items()}
        loss, _ = update(net, opt, batch, cfg)  # the trainer's own update
        if cuda:
            torch.cuda.synchronize()
        return loss

    gc.collect()
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        how = "torch.cuda.max_memory_allocated"
    elif _reset_peak():  # the high-water mark now equals the resident set: the peak grows from here
        base, how = _rss_now(), "peak RSS growth"
    else:  # the peak so far may lie above the resident set: growth past it only
        base, how = _peak_rss(), "ru_maxrss growth"
    losses = [one_update()]  # warm-up (AdamW state, allocator); its peak counts too
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        losses.append(one_update())
        seconds.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() if cuda else _peak_rss()) - base
    return {"seconds": sorted(seconds)[len(seconds) // 2], "tokens": int(batch["input_ids"].numel()),
            "peak": peak, "how": how, "losses": losses}  # fmt: skip


def update_variant(args: argparse.Namespace, variant: str) -> dict[str, Any]:
    """Run (a) for `variant` in a fresh subprocess (its own peak memory) and read its result."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", variant, "--model", args.model, "--threads",
            str(args.threads), "--tokens", str(args.tokens), "--repeats", str(args.repeats), "--adapter", args.adapter,
            "--precision", args.precision, "--text-format", args.text_format]  # fmt: skip
    argv += ["--tiny"] if args.tiny else []
    argv += ["--top-layers", str(args.top_layers)]
    argv += ["--data", args.data] if args.data else []
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the {variant} update failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


# ---------------------------------------------------------------------------------------------- (b), (c) decisions


def decision_points(arrays: list[Any], count: int, episode: int, steps: int) -> list[tuple[list[Any], int]]:
    """(transitions, n) of `count` trials with more than `steps` steps from the start (step n) of episode `episode`
    on (the timed decisions run on into the next episode where that one is short)."""
    from icrl_bench.training.dqn import array_episodes

    chosen = []
    for a in arrays:
        episodes = array_episodes(a)
        if len(episodes) >= episode and sum(len(e) for e in episodes[episode - 1 :]) > steps:
            chosen.append(([t for e in episodes for t in e], sum(len(e) for e in episodes[: episode - 1])))
            if len(chosen) == count:
                return chosen
    raise SystemExit(f"only {len(chosen)} trials have more than {steps} steps from episode {episode} on; "
                     "pass fewer --trials or --steps, or another --data")  # fmt: skip


def cached_play(net: Any, points: list[tuple[list[Any], int]], steps: int) -> tuple[float, list[list[Any]]]:
    """Seconds for `steps` decisions of every trial in one `DQNAgent`, after its context (the first episodes and
    the first decision of the measured one) was fed untimed; and each trial's Q-values at the timed decisions."""
    from icrl_bench.protocol.agent import TrialInfo
    from icrl_bench.training.agent import DQNAgent

    agent = DQNAgent(net=net, trace=True, window=0)
    which = list(range(len(points)))
    agent.begin_trials([TrialInfo(4, 100, 1000, 100, 0)] * len(points))
    history = [(t, j) for j, (tr, n) in enumerate(points) for t in tr[:n]]
    agent.observe_batch([t for t, _ in history], [j for _, j in history])
    agent.act_batch([tr[n].obs for tr, n in points], which)
    start = time.perf_counter()
    for k in range(1, steps + 1):
        agent.observe_batch([tr[n + k - 1] for tr, n in points], which)
        agent.act_batch([tr[n + k].obs for tr, n in points], which)
    seconds = time.perf_counter() - start
    return seconds, [[q for _, q in agent.decisions[j][1:]] for j in which]


def reencoded_play(net: Any, point: tuple[list[Any], int], steps: int) -> tuple[float, list[Any]]:
    """Seconds for the same decisions of one trial, each a forward pass over the whole history (lean head)."""
    import torch

    transitions, n = point
    device = net.head_rows.device
    qs = []
    start = time.perf_counter()
    with torch.no_grad():
        for k in range(1, steps + 1):
            ids, slots = net.encode(transitions[: n + k + 1])
            ids = ids[: slots[n + k] + 1]  # the history up to decision n + k, as the agent had fed it
            batch = {"input_ids": torch.tensor([ids], device=device),
                     "attention_mask": torch.ones(1, len(ids), dtype=torch.long, device=device),
                     "slots": torch.tensor([[len(ids) - 1]], device=device)}  # fmt: skip
            qs.append(net.q_values(batch)[0, 0].cpu())
    return time.perf_counter() - start, qs


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m", help="hub id, local folder or short name (LLMConfig.model)")
    p.add_argument("--tiny", action="store_true", help="the tests' tiny random Llama (tests/tiny_llm.py): smoke run")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--tokens", type=int, default=1024, help="(a): tokens of each of the 2 sequences")
    p.add_argument("--repeats", type=int, default=3, help="(a): timed updates after one warm-up (median)")
    p.add_argument("--steps", type=int, default=6, help="(b), (c): timed decisions of each trial")
    p.add_argument("--trials", type=int, default=16, help="(c): trials in one agent")
    p.add_argument("--episode", type=int, default=30, help="(b), (c): the episode whose decisions are timed")
    p.add_argument("--reencoded-trials", type=int, default=2, help="(b): trials re-encoded (it is slow)")
    p.add_argument("--data", default="", help="a dataset (.npz) instead of generated Q-learning histories")
    p.add_argument("--adapter", default="lora", choices=["lora", "ia3"])
    p.add_argument("--precision", default="bf16-autocast", choices=["fp32", "bf16-autocast", "bf16"])
    p.add_argument("--text-format", default="plain", choices=["auto", "plain", "llama3", "words"])
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    p.add_argument("--top-layers", type=int, default=None, help="(a) split variants: layers with adapters (LoRA on "
                   "every linear map there; the frozen layers below run once per trial and are cached); default 6 "
                   "(the smollm2-cpu presets), 1 with --tiny")
    p.add_argument("--child", choices=["lean", "naive", *SPLIT], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecation notices
    if args.top_layers is None:
        args.top_layers = 1 if args.tiny else 6
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        print("RESULT " + json.dumps(update_child(args)), flush=True)
        return 0

    # (a) in fresh processes first (this one has not loaded the model yet: they do not share the CPU with it)
    lean, naive = update_variant(args, "lean"), update_variant(args, "naive")
    split, cold = update_variant(args, "split"), update_variant(args, "split-cold")
    net = build(args).eval()
    arrays = trials(args, args.trials + 4)
    steps = args.steps
    points = decision_points(arrays, args.trials, args.episode, steps)
    context = sum(len(net.encode(tr[: n + 1])[0]) for tr, n in points) / len(points)
    batched_s, batched_q = cached_play(net, points, steps)
    single = [cached_play(net, [pt], steps) for pt in points]
    single_s = sum(s for s, _ in single)
    m = max(1, min(args.reencoded_trials, len(points)))
    reencoded = [reencoded_play(net, pt, steps) for pt in points[:m]]
    gap = max(float((a - b).abs().max()) for (_, [qa]), (_, qb) in zip(single[:m], reencoded) for a, b in zip(qa, qb))
    padded = max(float((a - b).abs().max()) for qa, (_, [qb]) in zip(batched_q, single) for a, b in zip(qa, qb))
    cached_rate = m * steps / sum(s for s, _ in single[:m])
    reencoded_rate = m * steps / sum(s for s, _ in reencoded)
    batched_rate, single_rate = len(points) * steps / batched_s, len(points) * steps / single_s

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu, {args.threads} torch thread(s)"
    name = "tiny random Llama (tests/tiny_llm.py)" if args.tiny else args.model
    mib = 2**20
    print(f"{name}: {net.format.name} format, {args.adapter}, {args.precision}, {device}")
    print(f"(a) one DQN update, 2 x {args.tokens:,} tokens       s/update     tokens/s   peak MiB ({lean['how']})")
    top = f"top {args.top_layers} layers"
    for label, r in (("lean head (4 LM-head rows at slots)", lean), ("naive (full-vocabulary logits)", naive),
                     (f"{top}, lower layers cached", split), (f"{top}, lower layers recomputed", cold)):  # fmt: skip
        print(f"    {label:<38} {r['seconds']:8.3f} {r['tokens'] / r['seconds']:12,.0f} {r['peak'] / mib:10.1f}")
    print(f"    {top} vs adapters in every layer (same run): {lean['seconds'] / split['seconds']:.2f}x the updates/s "
          f"once a trial's lower states are kept, {lean['seconds'] / cold['seconds']:.2f}x for trials never seen")
    print(f"(b) decisions/s at episode {args.episode} (~{context:,.0f} tokens of context), one trial at a time, "
          f"{m} trial(s) x {steps}")  # fmt: skip
    print(f"    KV cache (DQNAgent)                    {cached_rate:12,.1f}")
    print(f"    re-encode the whole history            {reencoded_rate:12,.1f}   (largest Q difference {gap:.2g})")
    print(f"(c) decisions/s at episode {args.episode}, {len(points)} trials x {steps}")
    print(f"    batched (one DQNAgent, one pass a step) {batched_rate:11,.1f}")
    print(f"    one trial at a time                    {single_rate:12,.1f}   (largest Q difference {padded:.2g})")
    speed = naive["seconds"] / lean["seconds"]
    ratios = [
        ("lean / naive update", speed, TARGETS["lean"], lean["peak"] < naive["peak"],
         f", and a lower peak ({lean['peak'] / mib:.1f} vs {naive['peak'] / mib:.1f} MiB)"),
        ("KV cache / re-encode", cached_rate / reencoded_rate, TARGETS["cache"], True, ""),
        ("batched / one at a time", batched_rate / single_rate, TARGETS["batch"], True, ""),
    ]  # fmt: skip
    print("ratios (measured in this run):")
    missed = 0
    for label, ratio, target, extra_ok, extra in ratios:
        ok = ratio >= target and extra_ok
        missed += not ok
        print(f"  {label:<24} {ratio:6.2f}x  (target >= {target:g}x{extra})  {'PASS' if ok else 'FAIL'}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
