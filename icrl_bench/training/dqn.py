"""Offline double DQN for a causal transformer over learning histories (the paper's method, from scratch).

Q(history, a) is the network's output for action a at each decision point of a compact sequence. The target
``y = scale * r + gamma * Q_target(next, argmax_a Q_online(next, a))`` (argmax over the four actions only, the
paper's notebook took it over the whole vocabulary) bootstraps within an episode, or also across episode ends
with ``cross_episode=True``; the target network is a Polyak average of the online one, updated after every
optimizer step. One readable loop: sample sequences, compute the loss at decision points, step, average,
log, checkpoint. `train_dqn(DQNConfig(...), resume=True)` continues from the last checkpoint exactly.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from icrl_bench.training.data import Dataset
from icrl_bench.training.formats import compact_sequence
from icrl_bench.training.model import FIELDS, CompactQNetwork, ModelConfig


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Everything a run depends on; defaults are the paper's where they apply (gamma, Polyak 0.1, AdamW)."""

    data: str = "data/train.npz"
    out: str = "runs/dqn"
    steps: int = 1000
    batch_size: int = 16
    max_positions: int = 512
    lr: float = 1e-3
    warmup: int = 10
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    gamma: float = 0.9
    reward_scale: float = 1.0  # the paper used 30 to match Llama's logits; 1 suits a model trained from scratch
    polyak: float = 0.1
    loss: str = "huber"  # or "paper": mean(((Q - y) / mean(y))^2)
    cross_episode: bool = False
    seed: int = 0
    log_every: int = 10
    save_every: int = 100
    model: ModelConfig = ModelConfig()

    def __post_init__(self) -> None:
        if self.loss not in ("huber", "paper"):
            raise ValueError(f"loss must be 'huber' or 'paper', got {self.loss!r}")
        if not 0 < self.polyak <= 1:
            raise ValueError(f"polyak must be in (0, 1], got {self.polyak!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DQNConfig:
        data = dict(data)
        data["model"] = ModelConfig(**data["model"])
        return cls(**data)


def make_batch(dataset: Dataset, sequence_ids: list[int], max_positions: int, n_obs: int) -> dict[str, torch.Tensor]:
    """Padded tensors of the given sequences (cut to `max_positions`), with their decision annotations."""
    seqs = [compact_sequence([dataset.episode(e) for e in dataset.sequences[i]], n_obs) for i in sequence_ids]
    length = min(max(len(s) for s in seqs), max_positions)
    batch = {f: np.zeros((len(seqs), length), dtype=np.int64) for f in FIELDS}
    extra = {"mask": np.zeros((len(seqs), length), dtype=np.int64), "decision": np.zeros((len(seqs), length), dtype=bool),
             "taken": np.zeros((len(seqs), length), dtype=np.int64), "gained": np.zeros((len(seqs), length)),
             "next_in": np.full((len(seqs), length), -1), "next_across": np.full((len(seqs), length), -1)}  # fmt: skip
    for b, s in enumerate(seqs):
        n = min(len(s), length)
        for f in FIELDS:
            batch[f][b, :n] = getattr(s, f)[:n]
        extra["mask"][b, :n] = 1
        extra["taken"][b, :n] = np.maximum(s.taken[:n], 0)
        extra["gained"][b, :n] = s.gained[:n]
        for key, source in (("next_in", s.next_in_episode), ("next_across", s.next_across)):
            nxt = source[:n].copy()
            nxt[nxt >= n] = -2  # its bootstrap position was cut off
            extra[key][b, :n] = nxt
        # A decision is trained only if its taken action lies inside the cut (and its bootstrap, if any).
        extra["decision"][b, :n] = s.decision[:n] & (np.arange(n) + 1 < n)
    out = {k: torch.from_numpy(v) for k, v in {**batch, **extra}.items()}
    for key in ("next_in", "next_across"):
        out["decision"] &= out[key] != -2
    return out


def dqn_loss(net: CompactQNetwork, target: CompactQNetwork, batch: dict[str, torch.Tensor], cfg: DQNConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """The double-DQN loss over the decision points of `batch`, and Q / target means for the log."""
    inputs = {f: batch[f] for f in FIELDS}
    q, _ = net(inputs, batch["mask"])
    with torch.no_grad():
        q_target, _ = target(inputs, batch["mask"])
        nxt = batch["next_across"] if cfg.cross_episode else batch["next_in"]
        safe = nxt.clamp(min=0)
        best = q.detach().gather(1, safe.unsqueeze(-1).expand(-1, -1, 4)).argmax(-1)  # online picks at next
        boot = q_target.gather(1, safe.unsqueeze(-1).expand(-1, -1, 4)).gather(-1, best.unsqueeze(-1)).squeeze(-1)
        y = cfg.reward_scale * batch["gained"].float() + cfg.gamma * torch.where(nxt >= 0, boot, torch.zeros_like(boot))
    taken = q.gather(-1, batch["taken"].unsqueeze(-1)).squeeze(-1)
    mask = batch["decision"]
    diff = taken[mask] - y[mask]
    if cfg.loss == "huber":
        loss = F.smooth_l1_loss(taken[mask], y[mask])
    else:
        loss = ((diff / y[mask].mean().clamp(min=1e-3)) ** 2).mean()
    return loss, {"q_mean": float(taken[mask].detach().mean()), "target_mean": float(y[mask].mean())}


@torch.no_grad()
def polyak_update(target: torch.nn.Module, online: torch.nn.Module, alpha: float) -> None:
    """target <- (1 - alpha) * target + alpha * online, parameter by parameter."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(1 - alpha).add_(o, alpha=alpha)


def train_dqn(cfg: DQNConfig, resume: bool = False) -> Path:
    """Train (or continue) a run in ``cfg.out``; returns the checkpoint path."""
    out = Path(cfg.out)
    ckpt = out / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    dataset = Dataset.load(cfg.data)
    largest = max(m.n_tiles for m in dataset.maps)
    if largest > cfg.model.n_obs:
        raise ValueError(f"the data has maps of {largest} tiles but the model sees {cfg.model.n_obs} observations")
    net = CompactQNetwork(cfg.model)
    target = copy.deepcopy(net)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(cfg.warmup, 1)))
    rng = np.random.default_rng(cfg.seed)
    step = 0
    if ckpt.exists():
        if not resume:
            raise FileExistsError(f"{ckpt} exists: pass --resume to continue it, or choose another --out")
        state = torch.load(ckpt, weights_only=False)
        if state["config"] != cfg.to_dict():
            raise ValueError(f"{ckpt} was made with other settings; resume with the same ones")
        net.load_state_dict(state["model"])
        target.load_state_dict(state["target"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        step = state["step"]
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.csv"
    new_log = not log_path.exists() or step == 0
    start = time.perf_counter()
    with open(log_path, "w" if new_log else "a", newline="") as f:
        log = csv.writer(f)
        if new_log:
            log.writerow(["step", "loss", "q_mean", "target_mean", "lr", "seconds"])
        while step < cfg.steps:
            ids = rng.integers(len(dataset.sequences), size=cfg.batch_size).tolist()
            loss, stats = dqn_loss(net, target, make_batch(dataset, ids, cfg.max_positions, cfg.model.n_obs), cfg)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            polyak_update(target, net, cfg.polyak)  # CRUCIAL: after every optimizer step (0.01 was worse)
            step += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                log.writerow([step, loss.item(), stats["q_mean"], stats["target_mean"], sched.get_last_lr()[0],
                              round(time.perf_counter() - start, 2)])  # fmt: skip
                f.flush()
            if step % cfg.save_every == 0 or step == cfg.steps:
                save_checkpoint(ckpt, net, target, opt, sched, rng, step, cfg)
    return ckpt


def save_checkpoint(path: Path, net: Any, target: Any, opt: Any, sched: Any, rng: np.random.Generator, step: int, cfg: DQNConfig) -> None:
    """Everything needed to continue exactly (written through a temporary file)."""
    state = {
        "model": net.state_dict(), "target": target.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(), "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
        "step": step, "config": cfg.to_dict(),
    }  # fmt: skip
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    (path.parent / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
