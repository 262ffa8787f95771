"""Training a causal transformer to learn in context: double DQN (the paper's method) and distillation.

Q(history, a) is the network's output for action a at each decision point of a compact sequence. The target
``y = scale * r + gamma * Q_target(next, argmax_a Q_online(next, a))`` (argmax over the four actions only; the
paper's notebook took it over the whole vocabulary) bootstraps within an episode, or also across episode ends
with ``cross_episode=True``; the target network is a Polyak average of the online one, updated after every
optimizer step. ``objective="distill"`` trains the same network, format and agent by cross-entropy to imitate
the actions in the data (algorithm distillation of a classical in-context learner).

Modes (where the training sequences come from):

- ``offline`` (the paper): sequences of a learning-history dataset (`icrl-bench data generate`);
- ``online``: the network plays whole trials (``online_episodes`` episodes on a fresh training map each,
  epsilon-greedy with a per-trial epsilon drawn from [0, epsilon]) every ``rollout_every`` updates; trials go
  into a FIFO replay buffer of ``replay_size`` trials, seeded with the dataset's sequences when one is given;
- ``hybrid``: as online, but a fixed ``data_fraction`` of every batch comes from the dataset.

Distillation online or hybrid is DAgger: the network plays, and a ``teacher`` (a built-in agent) shadowing
each trial labels every step with the action it would take there; the network learns the teacher's actions on
its own states, not only on the teacher's. Dataset sequences are labelled with the learner's own actions.

Online maps come from the training seed space of ``suite``, and a map that occurs in an evaluation suite is
skipped, as for datasets. Every ``eval_every`` updates the greedy network plays ``eval_trials`` held-out
training-distribution trials (another seed range) and the CSV log gets their mean success (AUC) and the
success of the first episode and of the last ten; the network with the best such AUC so far is kept in
``best.pt`` (model selection on training maps, never on the evaluation suites).

One readable loop for every network: sample sequences, loss at the decision points, step, average, roll out,
log, checkpoint. Rollouts and quick evaluations are played by the protocol's runner (`run_trials`), like any
evaluation; the network is any object with the small interface of `CompactLearner` (`TextQNetwork` is the other).
``train(TrainConfig(...), resume=True)`` continues from the last checkpoint exactly (replay included).
"""

from __future__ import annotations

import csv
import functools
import json
import os
import pickle
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from icrl_bench.envs.task import Transition
from icrl_bench.protocol.evaluation import ProgressBar
from icrl_bench.protocol.suites import get_suite
from icrl_bench.training.config import (  # noqa: F401 - re-exported
    EVAL_TRIALS_FROM,
    ConfigError,
    LOG_COLUMNS,
    MODES,
    OBJECTIVES,
    ONLINE_TRIALS_FROM,
    RESUMABLE_CHANGES,
    TrainConfig,
)
from icrl_bench.training.data import Dataset, DatasetError
from icrl_bench.training.formats import CompactSequence, Relabeling, compact_sequence
from icrl_bench.training.model import FIELDS, CompactLearner

# ---------------------------------------------------------------------------------------------- sequences


def trial_array(transitions: Sequence[Transition], labels: Sequence[int] | None = None) -> np.ndarray:
    """Transitions as a compact ``[n, 7]`` int16 array: obs, action, reward, next_obs, terminated, truncated, and
    the teacher's action in that step's observation (distillation's label; -1: none)."""
    labels = [-1] * len(transitions) if labels is None else labels
    return np.array([(t.obs, t.action, t.reward > 0, t.next_obs, t.terminated, t.truncated, y)
                     for t, y in zip(transitions, labels)], dtype=np.int16).reshape(-1, 7)  # fmt: skip


def array_episodes(array: np.ndarray) -> list[list[Transition]]:
    """The episodes of a `trial_array` (the last one may be cut short)."""
    episodes: list[list[Transition]] = [[]]
    for o, a, r, n, te, tr, *_ in array.tolist():
        episodes[-1].append(Transition(o, a, float(r), n, bool(te), bool(tr)))
        if te or tr:
            episodes.append([])
    return episodes if episodes[-1] else episodes[:-1]


def dataset_trials(dataset: Dataset) -> list[np.ndarray]:
    """Each dataset sequence as a `trial_array` (labels: the actions the learner took)."""
    t = dataset.transitions
    cols = np.stack([t["obs"], t["action"], t["reward"] > 0, t["next_obs"], t["terminated"], t["truncated"],
                     t["action"]], 1)  # the learner's own actions are the labels  # fmt: skip
    cols = cols.astype(np.int16)
    starts = dataset.episode_start
    return [np.concatenate([cols[starts[e] : starts[e + 1]] for e in seq]) for seq in dataset.sequences]


def annotate(seqs: Sequence[CompactSequence], trials: Sequence[np.ndarray], kept: Sequence[int],
             width: int) -> dict[str, torch.Tensor]:  # fmt: skip
    """Decision annotations of sequences whose first ``kept[b]`` positions (slots) are inside the cut.

    A decision is trained only if the position after it is inside too (the action, and the bootstrap position,
    which is always that next one). Shared by the compact positions and the text network's slots.
    """
    n = len(seqs)
    out = {"decision": np.zeros((n, width), dtype=bool), "taken": np.zeros((n, width), dtype=np.int64),
           "gained": np.zeros((n, width)), "label": np.full((n, width), -1),
           "next_in": np.full((n, width), -1), "next_across": np.full((n, width), -1)}  # fmt: skip
    for b, s in enumerate(seqs):
        k = min(len(s), kept[b])
        inside = np.arange(k) + 1 < k
        out["decision"][b, :k] = s.decision[:k] & inside
        out["taken"][b, :k] = np.maximum(s.taken[:k], 0)
        if trials[b].shape[1] > 6:  # the decision at position p is step p of the trial
            labels = trials[b][: k - 1, 6]
            out["label"][b, : len(labels)] = labels
        out["gained"][b, :k] = s.gained[:k]
        out["next_in"][b, :k] = np.where(inside, s.next_in_episode[:k], -1)
        out["next_across"][b, :k] = np.where(inside, s.next_across[:k], -1)
    return {k: torch.from_numpy(v) for k, v in out.items()}


def make_batch(trials: Sequence[np.ndarray], max_positions: int, n_obs: int) -> dict[str, torch.Tensor]:
    """Padded compact-format tensors of the given trials (each cut to its first `max_positions` positions),
    with their decisions (`annotate`)."""
    seqs = [compact_sequence(array_episodes(a), n_obs) for a in trials]
    length = min(max(len(s) for s in seqs), max_positions)
    n = len(seqs)
    out = {f: np.zeros((n, length), dtype=np.int64) for f in FIELDS}
    out["mask"] = np.zeros((n, length), dtype=np.int64)
    for b, s in enumerate(seqs):
        k = min(len(s), length)
        for f in FIELDS:
            out[f][b, :k] = getattr(s, f)[:k]
        out["mask"][b, :k] = 1
    return {k: torch.from_numpy(v) for k, v in out.items()} | annotate(seqs, trials, [length] * n, length)


# ---------------------------------------------------------------------------------------------- losses


class Reduce:
    """Sums over the processes of a data-parallel run (`accelerate launch`); one process: nothing to do.

    Losses are normalised by the *global* count of decisions (and the paper loss by the global mean |y|), and
    gradients are summed, so N processes on shards of a batch give the update of one process on all of it.
    """

    def __init__(self, world: int = 1) -> None:
        self.world = world

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        if self.world == 1:
            return x
        import torch.distributed as dist

        x = x.detach().clone()
        dist.all_reduce(x)
        return x

    def grads(self, params: Sequence[torch.nn.Parameter]) -> None:
        if self.world == 1:
            return
        import torch.distributed as dist

        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)


SINGLE = Reduce()


def _global_mean(values: torch.Tensor, reduce: Reduce) -> torch.Tensor:
    """This process's share of the mean over all processes' `values` (its sum over the global count)."""
    count = reduce.sum(torch.tensor(float(values.numel()), device=values.device))
    return values.sum() / count.clamp(min=1)


def _global_value(values: torch.Tensor, reduce: Reduce) -> float:
    """The mean of `values` over all processes (for logs and scales; no gradient)."""
    return float(reduce.sum(_global_mean(values.detach().float(), reduce)))


def dqn_loss(learner: Any, batch: dict[str, torch.Tensor], cfg: TrainConfig,
             reduce: Reduce = SINGLE) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    """The double-DQN loss over the decision points of `batch`, and Q / target means for the log."""
    q = learner.q_values(batch)
    with torch.no_grad():
        q_target = learner.q_values(batch, target=True)
        nxt = batch["next_across"] if cfg.cross_episode else batch["next_in"]
        safe = nxt.clamp(min=0).unsqueeze(-1).expand(-1, -1, 4)
        best = q.detach().gather(1, safe).argmax(-1)  # the online network picks the next action
        boot = q_target.gather(1, safe).gather(-1, best.unsqueeze(-1)).squeeze(-1)  # the target network scores it
        y = cfg.reward_scale * batch["gained"].float() + cfg.gamma * torch.where(nxt >= 0, boot, torch.zeros_like(boot))
    taken = q.gather(-1, batch["taken"].unsqueeze(-1)).squeeze(-1)
    mask = batch["decision"]
    if cfg.loss == "huber":
        loss = _global_mean(F.smooth_l1_loss(taken[mask], y[mask], reduction="none"), reduce)
    else:
        loss = paper_loss(taken[mask], y[mask], reduce)
    stats = {"q_mean": _global_value(taken[mask], reduce), "target_mean": _global_value(y[mask], reduce)}
    return loss, stats


def paper_loss(q: torch.Tensor, y: torch.Tensor, reduce: Reduce = SINGLE) -> torch.Tensor:
    """The paper's relative squared error, mean(((Q - y) / scale)^2), with scale the mean |y| of the batch.

    The paper divides by the mean target; a batch whose targets average to zero or below (falls, negative
    rewards) then divided by a clamped 1e-3 and gave losses of 3.6e5. The mean *magnitude* keeps the paper's
    scale on its positive targets and stays sane on any sign."""
    scale = _global_value(y.abs(), reduce)
    return _global_mean(((q - y) / max(scale, 1e-3)) ** 2, reduce)


def distill_loss(learner: Any, batch: dict[str, torch.Tensor],
                 reduce: Reduce = SINGLE) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    """Cross-entropy of the teacher's actions (the labels), the four outputs read as logits; accuracy for the log."""
    q = learner.q_values(batch)
    mask = batch["decision"] & (batch["label"] >= 0)
    logits, labels = q[mask], batch["label"][mask]
    loss = _global_mean(F.cross_entropy(logits, labels, reduction="none"), reduce)
    return loss, {"q_mean": _global_value(logits.argmax(-1) == labels, reduce), "target_mean": 0.0}


# ---------------------------------------------------------------------------------------------- rollouts


@functools.lru_cache(maxsize=8)  # the quick evaluation asks for the same trials every time
def fresh_trials(suite_name: str, start: int, count: int, avoid: frozenset[str] = frozenset()) -> tuple[tuple[int, ...], int]:
    """`count` training-suite trial indices from `start` whose maps are in no evaluation suite (nor in `avoid`);
    the next start."""
    from icrl_bench.protocol.suites import evaluation_map_ids, training_suite

    suite, banned, chosen = training_suite(suite_name), evaluation_map_ids() | avoid, []
    while len(chosen) < count:
        if all(t.map_id not in banned for t in suite.trial_tasks(start)):
            chosen.append(start)
        start += 1
    return tuple(chosen), start


@functools.lru_cache(maxsize=8)
def quick_eval_maps(suite_name: str, count: int) -> frozenset[str]:
    """The maps of the quick evaluation's trials: online rollouts never play them (model selection stays held out)."""
    from icrl_bench.protocol.suites import training_suite

    trials, _ = fresh_trials(suite_name, EVAL_TRIALS_FROM, count)
    suite = training_suite(suite_name)
    return frozenset(t.map_id for k in trials for t in suite.trial_tasks(k))


class _Shadowed:
    """A batched agent whose trials a teacher per trial shadows: the teacher's action in every observation the
    agent acts in becomes that step's label (DAgger), while the agent's own action is played."""

    def __init__(self, agent: Any, teacher: str) -> None:
        from icrl_bench.baselines import BUILTIN_AGENTS

        self.agent, self.make = agent, BUILTIN_AGENTS[teacher]

    def begin_trials(self, infos: Sequence[Any]) -> None:
        self.teachers = [self.make() for _ in infos]
        for t, info in zip(self.teachers, infos):
            t.begin_trial(info)
        self.labels: list[list[int]] = [[] for _ in infos]
        self.agent.begin_trials(infos)

    def act_batch(self, obs: Sequence[int], trials: Sequence[int]) -> list[int]:
        for o, j in zip(obs, trials):
            self.labels[j].append(int(self.teachers[j].act(o)))
        return self.agent.act_batch(obs, trials)

    def observe_batch(self, transitions: Sequence[Transition], trials: Sequence[int], demonstration: bool = False) -> None:
        self.agent.observe_batch(transitions, trials, demonstration)
        for t, j in zip(transitions, trials):
            self.teachers[j].observe(t)


def play(net: Any, suite_name: str, trials: Sequence[int], episodes: int, epsilon: Any = 0.0, seed: int = 0,
         max_positions: int | None = None, teacher: str = "", relabel: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:  # fmt: skip
    """The network plays training-suite trials side by side: (success [trials, episodes], each trial's array).

    The trials are played by the protocol's runner (`run_trials`: same seeds, step limits and resets; `DQNAgent`
    decides for all trials in one forward pass per step). With `max_positions`, a trial stops once its context
    fills that many positions, or tokens for a text network (training only reads that prefix); its unplayed
    episodes count as failures. With a `teacher` (a built-in agent name), a copy of it shadows each trial: it
    sees the same transitions and its action in every observation becomes that step's label (DAgger: the labels
    are on the network's own states).
    """
    import dataclasses

    from icrl_bench.protocol.runner import ProtocolOptions, run_trials
    from icrl_bench.protocol.suites import training_suite
    from icrl_bench.training.agent import DQNAgent

    base = training_suite(suite_name)
    episodes = episodes or base.n_episodes  # 0: the suite's own
    suite = dataclasses.replace(base, n_episodes=episodes, n_trials=0)
    agent = DQNAgent(net=net, epsilon=epsilon, record=True, relabel=relabel)  # records env labels
    player = _Shadowed(agent, teacher) if teacher else agent

    def full(j: int) -> bool:  # the trial's context has reached what training reads
        if max_positions is None or agent.context_length(j) < max_positions:
            return False
        agent.finish(j)
        return True

    success = np.zeros((len(trials), episodes))
    position = {k: j for j, k in enumerate(trials)}
    was_training = net.training
    net.eval()
    try:
        options = ProtocolOptions(batch_size=max(len(trials), 1), step_timeout=None)
        for record in run_trials(player, suite, list(trials), seed, options, privileged=False, stop=full):
            success[position[record.trial], : len(record.episodes)] = [e.success for e in record.episodes]
    finally:
        net.train(was_training)
    labels = player.labels if teacher else [[-1] * len(t) for t in agent.trajectories]
    # A trial's demonstrations lead its array, as they led its context (labelled with the demonstrator's actions).
    return success, [trial_array(agent.shown[j] + t, [d.action for d in agent.shown[j]] + labels[j])
                     for j, t in enumerate(agent.trajectories)]  # fmt: skip


# ---------------------------------------------------------------------------------------------- the loop


def update(learner: Any, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor], cfg: TrainConfig,
           reduce: Reduce = SINGLE) -> tuple[float, dict[str, float]]:  # fmt: skip
    """One optimizer update of any network (the trainer's, and the benchmarks'): loss, backward, gradients summed
    over processes, clipped, step, then the target's Polyak update. Returns the loss over all processes and stats."""
    if cfg.objective == "dqn":
        loss, stats = dqn_loss(learner, batch, cfg, reduce)
    else:
        loss, stats = distill_loss(learner, batch, reduce)
    opt.zero_grad()
    loss.backward()
    reduce.grads(learner.trainable_parameters())
    torch.nn.utils.clip_grad_norm_(learner.trainable_parameters(), cfg.grad_clip)
    opt.step()
    if cfg.objective == "dqn":
        learner.update_target(cfg.polyak)  # after every optimizer step (0.01 was worse)
    return float(reduce.sum(loss.detach())), stats


def build_learner(cfg: TrainConfig) -> Any:
    """The network a run trains: a `CompactLearner` (``network="compact"``) or a `TextQNetwork` (``"llm"``)."""
    if cfg.network == "llm":
        from icrl_bench.training.text_model import TextQNetwork

        return TextQNetwork(cfg.llm)
    return CompactLearner(cfg.model)


class _State:
    """What a checkpoint holds besides the config."""

    def __init__(self, cfg: TrainConfig, learner: Any) -> None:
        self.learner = learner
        self.opt = torch.optim.AdamW(learner.trainable_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: min(1.0, (s + 1) / max(cfg.warmup, 1)))
        self.rng = np.random.default_rng(cfg.seed)
        self.step = 0
        self.replay: list[np.ndarray] = []
        self.next_trial = ONLINE_TRIALS_FROM
        self.best_auc = -1.0  # best quick-evaluation AUC so far (its network is in best.pt)

    def save(self, path: Path, cfg: TrainConfig) -> None:
        """Everything needed to continue exactly (written through a temporary file); a text network's
        checkpoint holds its adapters only, never the base model."""
        state = {
            "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
            "numpy_rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "step": self.step,
            "config": cfg.to_dict(), "replay": self.replay, "next_trial": self.next_trial, "best_auc": self.best_auc,
        } | self.learner.weights()  # fmt: skip
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)
        (path.parent / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))

    def load(self, path: Path, cfg: TrainConfig) -> None:
        state = torch.load(path, weights_only=False, map_location="cpu")
        mine = {k: v for k, v in cfg.to_dict().items() if k not in RESUMABLE_CHANGES}
        theirs = {k: v for k, v in state["config"].items() if k not in RESUMABLE_CHANGES}
        theirs.setdefault("network", "compact")
        theirs.setdefault("llm", mine["llm"])  # checkpoints from before text networks
        if mine != theirs:
            changed = sorted(k for k in mine if theirs.get(k) != mine[k])
            raise ConfigError(f"{path} was made with other settings ({', '.join(changed)}); resume with the same ones")
        self.learner.load_weights(state)
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        self.step, self.replay, self.next_trial = state["step"], state["replay"], state["next_trial"]
        self.best_auc = state.get("best_auc", -1.0)

    def save_best(self, out: Path, cfg: TrainConfig) -> None:
        """The network of the best quick evaluation so far: ``best.pt`` (compact) or ``best_adapter/`` (llm)."""
        if cfg.network == "llm":
            self.learner.save_adapter(out / "best_adapter", cfg.max_positions,
                                      {"step": self.step, "quick_eval_auc": self.best_auc})  # fmt: skip
        else:
            torch.save({"config": cfg.to_dict(), "model": self.learner.net.state_dict(), "step": self.step,
                        "quick_eval_auc": self.best_auc}, out / "best.pt")  # fmt: skip


def quick_eval(net: Any, cfg: TrainConfig) -> np.ndarray:
    """Greedy success [trials, episodes] on the held-out training-distribution trials.

    Trials stop at twice the trained context length (episodes not played count as failures): a monitor, not a
    score; `icrl-bench evaluate` plays every episode."""
    first = cfg.suite.split(",")[0]
    trials, _ = fresh_trials(first, EVAL_TRIALS_FROM, cfg.eval_trials)
    success, _ = play(net, first, trials, cfg.online_episodes, 0.0, cfg.seed, 2 * cfg.max_positions,
                      relabel=cfg.relabel)  # fmt: skip
    return success


def _parallel() -> tuple[Reduce, int, Any]:
    """(reduce, rank, device) of this process: several under `accelerate launch` (gloo on CPU, nccl on GPUs)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import Accelerator  # sets up the process group from the launcher's environment

        acc = Accelerator(cpu=not torch.cuda.is_available())
        return Reduce(acc.num_processes), acc.process_index, acc.device
    return SINGLE, 0, torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train(cfg: TrainConfig, resume: bool = False, progress: bool = False) -> Path:
    """Train (or continue) a run in ``cfg.out``; returns the checkpoint path.

    Under ``accelerate launch`` each process computes its shard of every batch (the same global batch is drawn
    in every process) and gradients are summed; rollouts are played identically in every process, and only the
    first one writes the log and checkpoints.
    """
    out = Path(cfg.out)
    ckpt = out / "checkpoint.pt"
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    suites = cfg.suite.split(",")
    for name in suites:
        get_suite(name)  # an unknown name is an error that lists the known ones
    reduce, rank, device = _parallel()
    main = rank == 0
    data = Dataset.load(cfg.data) if cfg.data else None
    if data is not None:
        data.check_disjoint()
        largest = max(m.n_tiles for m in data.maps)
        if cfg.network == "compact" and largest > (cfg.relabel or cfg.model.n_obs):
            raise DatasetError(f"the data has maps of {largest} tiles but the model sees {cfg.relabel or cfg.model.n_obs} "
                               f"{'symbols' if cfg.relabel else 'observations'}")  # fmt: skip
    data_trials = dataset_trials(data) if data is not None else []
    learner = build_learner(cfg)
    if cfg.pack:
        data_trials = pack_rows(data_trials, cfg.max_positions, functools.partial(sequence_length, learner))
    s = _State(cfg, learner)
    if ckpt.exists():
        if not resume:
            raise FileExistsError(f"{ckpt} exists: pass --resume to continue it, or choose another --out")
        s.load(ckpt, cfg)
    elif cfg.init:
        start_from(learner, cfg.init)
    elif cfg.mode == "online":
        s.replay = list(data_trials[-cfg.replay_size :])  # seeded with classical histories, evicted first
    learner.net.to(device).train()  # train mode: dropout, and gradient checkpointing (transformers needs it)
    if cfg.network == "compact":
        learner.target.to(device)
    held_out = quick_eval_maps(suites[0], cfg.eval_trials) if cfg.eval_every > 0 else frozenset()
    log_path = out / "log.csv"
    new_log = not log_path.exists() or s.step == 0
    offset = 0.0  # seconds spent before this resume: the log's clock runs on
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if not new_log:  # drop rows written after the checkpoint (the run died between a log line and a save)
            kept = [r for r in csv.reader(log_path.open()) if r and (r[0] == "step" or int(r[0]) <= s.step)]
            offset = float(kept[-1][5]) if len(kept) > 1 else 0.0
            with open(log_path, "w", newline="") as f:
                csv.writer(f).writerows(kept)
    start = time.perf_counter() - offset
    bar = ProgressBar(cfg.steps, s.step, f"train {cfg.objective}", progress and main, unit="updates")
    last_eval = ""
    with open(log_path, "w" if new_log else "a", newline="") if main else open(os.devnull, "w") as f:
        log = csv.writer(f)
        if new_log:
            log.writerow(LOG_COLUMNS)
        while s.step < cfg.steps:
            if cfg.mode != "offline" and (s.step % cfg.rollout_every == 0 or not s.replay):
                suite = suites[(s.step // cfg.rollout_every) % len(suites)]  # rollouts take the suites in turn
                trials, s.next_trial = fresh_trials(suite, s.next_trial, cfg.rollout_trials, held_out)
                eps = s.rng.uniform(0, cfg.epsilon, size=len(trials))
                _, played = play(learner.net, suite, trials, cfg.online_episodes, eps, cfg.seed, cfg.max_positions,
                                 cfg.teacher, cfg.relabel)  # fmt: skip
                s.replay = (s.replay + played)[-cfg.replay_size :]
            sampled = _sample(s, cfg, data_trials)
            if cfg.relabel:  # a fresh relabeling of every sampled sequence (drawn for the global batch)
                sampled = [Relabeling.draw(s.rng, cfg.relabel).trial(a) for a in sampled]
            ids = sampled[rank :: reduce.world]  # this process's shard of the global batch
            batch = {k: v.to(device) for k, v in learner.batch(ids, cfg.max_positions).items()}
            total, stats = update(learner, s.opt, batch, cfg, reduce)
            s.sched.step()
            s.step += 1
            evaluated = cfg.eval_every > 0 and (s.step % cfg.eval_every == 0 or s.step == cfg.steps)
            if main and (s.step % cfg.log_every == 0 or s.step == cfg.steps or evaluated):
                row: list[Any] = [s.step, round(total, 6), round(stats["q_mean"], 5), round(stats["target_mean"], 5),
                                  s.sched.get_last_lr()[0], round(time.perf_counter() - start, 2), len(s.replay)]  # fmt: skip
                if evaluated:
                    success = quick_eval(learner.net, cfg)
                    row += [round(success.mean(), 4), round(success[:, 0].mean(), 4), round(success[:, -10:].mean(), 4)]
                    if success.mean() > s.best_auc:  # model selection on held-out *training* maps only
                        s.best_auc = float(success.mean())
                        s.save_best(out, cfg)
                    last_eval = f", quick eval AUC {success.mean():.3f}"
                log.writerow(row)
                f.flush()
            if main and (s.step % cfg.save_every == 0 or s.step == cfg.steps):
                s.save(ckpt, cfg)
            bar.update(1, f"  loss {total:.4f}{last_eval}")
    return ckpt


def sequence_length(learner: Any, trial: np.ndarray) -> int:
    """Positions (compact) or tokens (text) of a trial array as the learner's batches read it."""
    episodes = array_episodes(trial)
    if hasattr(learner.net, "encode"):
        return len(learner.net.encode([t for e in episodes for t in e])[0])
    return len(compact_sequence(episodes, learner.net.config.n_obs))


def pack_rows(trials: Sequence[np.ndarray], max_positions: int, length: Any) -> list[np.ndarray]:
    """Consecutive trials joined into rows of at least `max_positions` (by `length`; the batch cuts the last one),
    as the paper's data concatenates sets across maps. A row's last trial may be cut; every trial starts one row or
    continues the row before it, in order, so one pass over the rows is one pass over the data."""
    rows: list[np.ndarray] = []
    current: list[np.ndarray] = []
    filled = 0
    for trial in trials:
        current.append(trial)
        filled += length(trial)
        if filled >= max_positions:
            rows.append(np.concatenate(current))
            current, filled = [], 0
    if current:
        rows.append(np.concatenate(current))
    return rows


def start_from(learner: Any, checkpoint: str) -> None:
    """Load the networks of another run's checkpoint into `learner` (a text network also takes a saved adapter
    folder, e.g. a run's ``best_adapter/``); its target then equals its online network."""
    if Path(checkpoint).is_dir() and hasattr(learner, "load_adapter_folder"):
        learner.load_adapter_folder(checkpoint)
        learner.update_target(1.0)
        return
    try:
        state = torch.load(checkpoint, weights_only=False, map_location="cpu")
        learner.load_weights(state)
    except (OSError, KeyError, TypeError, RuntimeError, pickle.UnpicklingError, EOFError) as e:
        raise ConfigError(f"--init {checkpoint}: not a checkpoint of this network ({type(e).__name__}: {e}); give "
                          "the checkpoint.pt of a run with the same network settings") from None  # fmt: skip
    learner.update_target(1.0)


def _sample(s: _State, cfg: TrainConfig, data_trials: list[np.ndarray]) -> list[np.ndarray]:
    if cfg.mode == "offline":
        return [data_trials[i] for i in s.rng.integers(len(data_trials), size=cfg.batch_size)]
    if cfg.mode == "online":
        return [s.replay[i] for i in s.rng.integers(len(s.replay), size=cfg.batch_size)]
    from_data = int(round(cfg.data_fraction * cfg.batch_size))
    return [data_trials[i] for i in s.rng.integers(len(data_trials), size=from_data)] + [
        s.replay[i] for i in s.rng.integers(len(s.replay), size=cfg.batch_size - from_data)
    ]


class CheckpointError(ValueError):
    """A file given as a training checkpoint that is not one; the message says what it is missing."""


def export_model(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the online network of a training checkpoint as a small model file (config, weights, update count).

    `DQNAgent` loads either kind; an RL^2 checkpoint becomes the policy file `rl2_agent` loads. The model file drops the target network, optimizer and replay buffer. A text
    network's checkpoint is written as an adapter folder (`TextQNetwork.save_adapter`) named `out`.
    """
    try:
        state = torch.load(checkpoint, weights_only=False, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:  # not a torch file (OSError: no file at all)
        raise CheckpointError(f"{checkpoint} is not a training checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or not ({"env", "h"} <= state.keys() or (
            {"config", "step"} <= state.keys() and ("model" in state or "adapters" in state))):  # fmt: skip
        raise CheckpointError(
            f"{checkpoint} is not the checkpoint of an `icrl-bench train` run (its checkpoint.pt): it lacks the "
            "network's config and weights"
        )
    if "env" in state and "h" in state:  # an RL^2 run's checkpoint (`training.rl2`)
        from icrl_bench.training.rl2 import export_policy

        return export_policy(state, out)
    if state["config"].get("network") == "llm":
        cfg = TrainConfig.from_dict(state["config"])
        net = build_learner(cfg)
        net.load_weights(state)
        return net.save_adapter(out, cfg.max_positions, {"step": state["step"]})
    slim = {"config": state["config"], "model": state["model"], "step": state["step"]}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim, out)
    return out
