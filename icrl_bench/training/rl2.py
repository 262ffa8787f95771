"""RL^2: a recurrent policy trained by PPO across whole trials (the standard meta-RL baseline), CleanRL-style.

    icrl-bench train rl2 --out runs/rl2 --total-steps 2000000 [--num-envs 256] [--resume]
    icrl-bench evaluate icrl_bench.training.rl2:rl2_agent --agent-arg path=runs/rl2/policy.pt

The environment is ``ICRLFrozenLakeTrial-v0`` numpy-batched (`envs/trial.py`): a whole trial of `n_episodes`
inner episodes is one episode, and the observation carries the tile, the previous action and reward and an
inner-episode-ended flag, so a GRU can carry what it learned from one inner episode into the next. Its hidden
state is reset only when a trial begins. A finished trial is replaced at once (``reset(options={"reset_mask":
...})``), so no step of the rollout is wasted on Gymnasium's next-step autoreset.

Symbols, not places (``relabel=True``, the default): every trial maps the env's tile indices into `tiles`
symbols by a fresh random injection, so the policy must learn from its context what a symbol means instead of
memorising tile priors, and it can play maps larger than those it was trained on (up to `tiles` tiles). The
agent draws its injection from `TrialInfo.seed`.

PPO (Schulman et al. 2017) as in CleanRL's ``ppo_atari_lstm.py``: GAE, clipped surrogate and value loss,
entropy bonus, minibatches of whole environment sequences (the GRU is unrolled from the hidden state stored at
the rollout's start), gradient clipping. Every `eval_every` updates the greedy policy plays `eval_trials`
held-out training-distribution trials through the protocol's runner (model selection never touches an
evaluation suite); ``log.csv`` has every update; ``checkpoint.pt`` (policy, optimizer, env, RNGs) lets
``--resume`` continue exactly; ``policy.pt`` is the latest policy and ``best.pt`` the one with the best quick
evaluation.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from icrl_bench.baselines.recurrent import TrialPolicyAgent
from icrl_bench.envs.trial import TrialEpisodeVectorEnv, TrialMixVectorEnv, demonstration_observations
from icrl_bench.protocol.agent import TrialInfo
from icrl_bench.training.config import RL2_HELP, RL2Config  # noqa: F401 - re-exported


class RL2RunError(ValueError):
    """A run that cannot start or continue as asked; the message says what to do."""


class RL2Policy(nn.Module):
    """Observation encoder, a GRU across the whole trial, actor and critic heads."""

    def __init__(self, n_in: int, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh())
        self.gru = nn.GRU(hidden, hidden)
        self.actor = nn.Linear(hidden, 4)
        self.critic = nn.Linear(hidden, 1)
        self.hidden = hidden

    def initial(self, n: int) -> torch.Tensor:
        return torch.zeros(1, n, self.hidden)

    def forward(self, x: torch.Tensor, h: torch.Tensor, start: torch.Tensor,
                init: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:  # fmt: skip
        """(logits [T, N, 4], values [T, N], last hidden) of observations x [T, N, n_in]; before every step where
        `start` [T, N] (a trial's first observation) the hidden state is zeroed, or set to `init` [T, N, hidden]
        there (the state after the trial's demonstrations, `encode`)."""
        z = self.encoder(x)
        outs = []
        for t in range(x.shape[0]):
            keep = (~start[t]).float().view(1, -1, 1)
            h = h * keep if init is None else h * keep + init[t][None] * (1.0 - keep)
            out, h = self.gru(z[t : t + 1], h)
            outs.append(out[0])
        y = torch.stack(outs)
        return self.actor(y), self.critic(y).squeeze(-1), h

    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The hidden state [N, hidden] after reading sequences x [L, N, n_in] from a zero state, each up to its
        last `valid` [L, N] step (demonstrations: shorter ones padded at the end)."""
        z = self.encoder(x)
        h = self.initial(x.shape[1])
        for t in range(x.shape[0]):
            _, nxt = self.gru(z[t : t + 1], h)
            h = torch.where(valid[t].view(1, -1, 1), nxt, h)
        return h[0]


def relabeled(obs: np.ndarray, symbols: np.ndarray | None, tiles: int) -> np.ndarray:
    """Trial observations with each row's tile one-hot moved to that row's symbol (`symbols` [N, tiles])."""
    if symbols is None:
        return obs
    out = obs.copy()
    rows = np.arange(len(obs))
    tile = obs[:, :tiles].argmax(1)
    out[:, :tiles] = 0.0
    out[rows, symbols[rows, tile]] = 1.0
    return out


def bases(config: RL2Config) -> list[tuple[str, int]]:
    """(base id, episodes per trial) of each part of `config.base`: ``"ICRLFrozenLake-v0"`` or a mixture such as
    ``"ICRLFrozenLake-v0,ICRLFrozenLakeNonStationary-v0:60"`` (``:N`` overrides `n_episodes`)."""
    out = []
    for item in config.base.split(","):
        name, _, episodes = item.strip().partition(":")
        if episodes and not episodes.isdigit():
            raise RL2RunError(f"base {item!r}: write ID or ID:EPISODES, e.g. ICRLFrozenLakeNonStationary-v0:60")
        out.append((name, int(episodes) if episodes else config.n_episodes))
    return out


def make_env(config: RL2Config) -> TrialEpisodeVectorEnv | TrialMixVectorEnv:
    """The training env: the trial env of each base (the sub-envs split evenly), never drawing a map of an
    evaluation suite (`evaluation_map_ids`: training and evaluation maps stay disjoint)."""
    from icrl_bench.envs.registration import ENV_SPECS
    from icrl_bench.protocol.suites import evaluation_map_ids

    parts = bases(config)
    for name, _ in parts:
        if name not in ENV_SPECS or "task" in ENV_SPECS[name][0]:
            raise RL2RunError(f"base {name!r}: use a registered id that draws its maps ({', '.join(ENV_SPECS)}; not "
                              "the paper's fixed stitching task)")  # fmt: skip
    banned = evaluation_map_ids()
    sizes = [config.num_envs // len(parts) + (k < config.num_envs % len(parts)) for k in range(len(parts))]
    envs = [TrialEpisodeVectorEnv(size, base=name, n_episodes=episodes, tiles=config.tiles, exclude_maps=banned)
            for (name, episodes), size in zip(parts, sizes)]  # fmt: skip
    return envs[0] if len(envs) == 1 else TrialMixVectorEnv(envs)


class _Run:
    """Everything a checkpoint holds."""

    def __init__(self, config: RL2Config) -> None:
        torch.manual_seed(config.seed)
        self.config = config
        self.env = make_env(config)
        n_in = config.tiles + 6
        self.policy = RL2Policy(n_in, config.hidden)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.lr, eps=1e-5)
        self.rng = np.random.default_rng(config.seed)
        self.update = 0
        self.best = -1.0
        obs, info = self.env.reset(seed=config.seed)
        self.symbols = self._draw(config.num_envs) if config.relabel else None
        self.obs = relabeled(obs, self.symbols, config.tiles)
        self.start = np.ones(config.num_envs, bool)
        self.h = self.policy.initial(config.num_envs)
        self.pending = torch.zeros(config.num_envs, config.hidden)  # a new trial's state after its demonstrations
        with torch.no_grad():
            self._show_demonstrations(np.ones(config.num_envs, bool), info)
        self.trial_return = np.zeros(config.num_envs)  # successes so far in each env's current trial
        self.episodes = getattr(self.env, "episodes_per_env", np.full(config.num_envs, config.n_episodes))

    def _draw(self, n: int) -> np.ndarray:
        return np.stack([self.rng.permutation(self.config.tiles) for _ in range(n)])

    def _show_demonstrations(self, new: np.ndarray, info: dict[str, Any]) -> None:
        """For the trials that begin where `new`: the policy reads their demonstrations (relabeled as the trial)
        into `pending`, the state their first step starts from, and their first observation shows the last
        demonstration step's action, reward and end, as `TrialPolicyAgent(demonstrations=True)` shows them."""
        c = self.config
        self.pending[new] = 0.0
        if not c.demonstrations or "demonstrations" not in info:
            return
        rows = [i for i in np.flatnonzero(new) if info["_demonstrations"][i] and info["demonstrations"][i]]
        if not rows:
            return
        seqs, lasts = zip(*(demonstration_observations(c.tiles, info["demonstrations"][i]) for i in rows))
        length = max(len(x) for x in seqs)
        x = np.zeros((length, len(rows), c.tiles + 6), np.float32)
        valid = np.zeros((length, len(rows)), bool)
        for k, (i, seq) in enumerate(zip(rows, seqs)):
            symbols = None if self.symbols is None else self.symbols[[i]].repeat(len(seq), 0)
            x[: len(seq), k], valid[: len(seq), k] = relabeled(seq, symbols, c.tiles), True
        self.pending[rows] = self.policy.encode(torch.as_tensor(x), torch.as_tensor(valid))
        for i, (action, reward, ended) in zip(rows, lasts):
            self.obs[i, c.tiles : c.tiles + 6] = 0.0
            self.obs[i, c.tiles + action], self.obs[i, c.tiles + 4], self.obs[i, c.tiles + 5] = 1.0, reward, ended

    def state(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(), "env": self.env,
                "rng": self.rng, "torch_rng": torch.get_rng_state(), "update": self.update, "best": self.best,
                "symbols": self.symbols, "obs": self.obs, "start": self.start, "h": self.h, "trial_return": self.trial_return,
                "pending": self.pending, "config": dataclasses.asdict(self.config)}  # fmt: skip

    def load(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.env, self.rng, self.update, self.best = state["env"], state["rng"], state["update"], state["best"]
        self.symbols, self.obs, self.start, self.h = state["symbols"], state["obs"], state["start"], state["h"]
        self.trial_return = state["trial_return"]
        self.pending = state.get("pending", self.pending)  # runs from before demonstrations: none pending
        torch.set_rng_state(state["torch_rng"])

    def rollout(self) -> dict[str, torch.Tensor]:
        c, n = self.config, self.config.num_envs
        shape = (c.num_steps, n)
        buf = {"obs": torch.zeros(*shape, c.tiles + 6), "start": torch.zeros(shape, dtype=torch.bool),
               "action": torch.zeros(shape, dtype=torch.long), "logp": torch.zeros(shape), "value": torch.zeros(shape),
               "reward": torch.zeros(shape), "done": torch.zeros(shape)}  # fmt: skip
        if c.demonstrations:
            buf["init"] = torch.zeros(*shape, c.hidden)
        h0 = self.h.clone()
        finished: list[float] = []  # success rate of each trial that ended in this rollout
        with torch.no_grad():
            for t in range(c.num_steps):
                x = torch.as_tensor(self.obs)
                start = torch.as_tensor(self.start)
                init = self.pending[None] if c.demonstrations else None
                logits, value, self.h = self.policy(x[None], self.h, start[None], init)
                if c.demonstrations:
                    buf["init"][t] = self.pending
                dist = torch.distributions.Categorical(logits=logits[0])
                action = dist.sample()
                obs, reward, done, _, _ = self.env.step(action.numpy())
                self.trial_return += reward
                if done.any():  # a new trial at once, on a fresh map, with fresh symbols
                    finished += (self.trial_return[done] / self.episodes[done]).tolist()
                    self.trial_return[done] = 0.0
                    fresh, fresh_info = self.env.reset(options={"reset_mask": done})
                    obs[done] = fresh[done]
                    if self.symbols is not None:
                        self.symbols[done] = self._draw(int(done.sum()))
                buf["obs"][t], buf["start"][t], buf["action"][t] = x, start, action
                buf["logp"][t], buf["value"][t] = dist.log_prob(action), value[0]
                buf["reward"][t], buf["done"][t] = torch.as_tensor(reward), torch.as_tensor(done, dtype=torch.float32)
                self.obs, self.start = relabeled(obs, self.symbols, c.tiles), done
                if done.any():
                    self._show_demonstrations(done, fresh_info)
            init = self.pending[None] if c.demonstrations else None
            _, next_value, _ = self.policy(torch.as_tensor(self.obs)[None], self.h, torch.as_tensor(self.start)[None], init)
        advantages = torch.zeros(shape)
        last = torch.zeros(n)
        for t in reversed(range(c.num_steps)):
            following = next_value[0] if t == c.num_steps - 1 else buf["value"][t + 1]
            alive = 1.0 - buf["done"][t]
            delta = buf["reward"][t] + c.gamma * following * alive - buf["value"][t]
            last = delta + c.gamma * c.gae_lambda * alive * last
            advantages[t] = last
        buf["advantage"], buf["return"], buf["h0"] = advantages, advantages + buf["value"], h0
        buf["finished"] = torch.tensor(finished)
        return buf

    def learn(self, buf: dict[str, torch.Tensor]) -> dict[str, float]:
        c = self.config
        envs = np.arange(c.num_envs)
        per = c.num_envs // c.minibatches
        stats: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "entropy": [], "clipfrac": []}
        for _ in range(c.epochs):
            self.rng.shuffle(envs)
            for i in range(0, c.num_envs, per):
                idx = torch.as_tensor(envs[i : i + per])
                init = buf["init"][:, idx] if "init" in buf else None
                logits, value, _ = self.policy(buf["obs"][:, idx], buf["h0"][:, idx], buf["start"][:, idx], init)
                dist = torch.distributions.Categorical(logits=logits)
                logp = dist.log_prob(buf["action"][:, idx])
                ratio = (logp - buf["logp"][:, idx]).exp()
                adv = buf["advantage"][:, idx]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - c.clip, 1 + c.clip)).mean()
                value_loss = 0.5 * (value - buf["return"][:, idx]).pow(2).mean()
                entropy = dist.entropy().mean()
                loss = policy_loss + c.vf_coef * value_loss - c.ent_coef * entropy
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.policy.parameters(), c.max_grad_norm)
                self.optimizer.step()
                stats["policy_loss"].append(policy_loss.item())
                stats["value_loss"].append(value_loss.item())
                stats["entropy"].append(entropy.item())
                stats["clipfrac"].append(((ratio - 1).abs() > c.clip).float().mean().item())
        return {k: float(np.mean(v)) for k, v in stats.items()}


RESUMABLE = ("total_steps", "eval_every", "save_every", "eval_trials")  # may change on --resume
LOG_COLUMNS = ("update", "steps", "seconds", "steps_per_second", "success", "trials_finished", "policy_loss",
               "value_loss", "entropy", "clipfrac", "eval_auc")  # fmt: skip


def quick_eval(policy: RL2Policy, config: RL2Config) -> float:
    """Mean success of the greedy policy on `eval_trials` held-out training-distribution trials (the runner)."""
    import dataclasses as dc

    from icrl_bench.protocol.runner import run_trials
    from icrl_bench.protocol.suites import training_suite
    from icrl_bench.training.config import EVAL_TRIALS_FROM
    from icrl_bench.training.dqn import fresh_trials

    first = bases(config)[0][0]
    suite_name = {"ICRLFrozenLake-v0": "id", "ICRLFrozenLakeLarge-v0": "ood-large"}.get(first, "id")
    trials, _ = fresh_trials(suite_name, EVAL_TRIALS_FROM, config.eval_trials)
    suite = dc.replace(training_suite(suite_name), n_episodes=config.n_episodes, n_trials=0)
    agent = RL2Agent(policy, config.tiles, config.relabel)
    records = list(run_trials(agent, suite, trials))
    return float(np.mean([[e.success for e in r.episodes] for r in records]))


def train(config: RL2Config, resume: bool = False, progress: bool = True) -> Path:
    """Train (or continue) a run in `config.out`; returns the folder."""
    from icrl_bench.protocol.evaluation import ProgressBar

    torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(config)
    checkpoint = out / "checkpoint.pt"
    if resume:
        if not checkpoint.exists():
            raise RL2RunError(f"--resume: {checkpoint} does not exist; start without --resume")
        state = torch.load(checkpoint, weights_only=False)
        defaults = dataclasses.asdict(RL2Config())  # settings added since the checkpoint was written: their defaults
        changed = sorted(k for k, v in dataclasses.asdict(config).items() if state["config"].get(k, defaults[k]) != v)
        if set(changed) - set(RESUMABLE):
            raise RL2RunError(f"--resume with other settings than {checkpoint} was made with ({', '.join(changed)}); "
                             f"only {', '.join(RESUMABLE)} may change")  # fmt: skip
        run.load(state)
    elif (out / "log.csv").exists():
        raise RL2RunError(f"{out} holds a run: continue it with --resume, or choose another --out")
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1) + "\n")
    log_path = out / "log.csv"
    new_log = not log_path.exists()
    bar = ProgressBar(config.updates, run.update, "rl2", progress, unit="updates")
    with log_path.open("a", newline="") as f:
        writer = csv.DictWriter(f, LOG_COLUMNS)
        if new_log:
            writer.writeheader()
        start = time.perf_counter()
        while run.update < config.updates:
            tick = time.perf_counter()
            buf = run.rollout()
            stats = run.learn(buf)
            run.update += 1
            ended = len(buf["finished"])
            success = float(buf["finished"].mean()) if ended else float("nan")
            row = {"update": run.update, "steps": run.update * config.num_envs * config.num_steps,
                   "seconds": round(time.perf_counter() - start, 2),
                   "steps_per_second": round(config.num_envs * config.num_steps / (time.perf_counter() - tick)),
                   "success": round(success, 4), "trials_finished": ended, **stats, "eval_auc": ""}  # fmt: skip
            if run.update % config.eval_every == 0 or run.update == config.updates:
                row["eval_auc"] = auc = quick_eval(run.policy, config)
                if auc > run.best:
                    run.best = auc
                    save_policy(run.policy, config, out / "best.pt", run.update)
            writer.writerow(row)
            f.flush()
            if run.update % config.save_every == 0 or run.update == config.updates:
                save_policy(run.policy, config, out / "policy.pt", run.update)
                tmp = checkpoint.with_suffix(".tmp")
                torch.save(run.state(), tmp)
                tmp.replace(checkpoint)
            bar.update(1, f" success {success:.3f}")
    return out


def save_policy(policy: RL2Policy, config: RL2Config, path: Path, update: int) -> None:
    """What `rl2_agent` loads (tiles, width, relabeling, weights), with the update it was saved at and the run's
    settings (model cards read them)."""
    torch.save({"policy": policy.state_dict(), "tiles": config.tiles, "hidden": config.hidden,
                "relabel": config.relabel, "update": update, "config": dataclasses.asdict(config)}, path)  # fmt: skip


def export_policy(state: dict[str, Any], out: str | Path) -> Path:
    """The policy file (`save_policy`) of a loaded training checkpoint (``icrl-bench train export``)."""
    config = RL2Config(**state["config"])  # a missing (newer) setting takes its default
    policy = RL2Policy(config.tiles + 6, config.hidden)
    policy.load_state_dict(state["policy"])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_policy(policy, config, out, int(state["update"]))
    return out


class RL2Agent(TrialPolicyAgent):
    """A trained `RL2Policy` playing the protocol (hidden state kept across the trial's episodes): greedy, or with
    ``sample=True`` drawing actions from the policy as in training (seeded by `TrialInfo.seed`: reproducible)."""

    def __init__(self, policy: RL2Policy, tiles: int, relabel: bool = True, sample: bool = False,
                 demonstrations: bool = False) -> None:  # fmt: skip
        self.net, self.relabel, self.sample = policy.eval(), relabel, bool(sample)
        super().__init__(self._policy, tiles, demonstrations)

    def begin_trial(self, info: TrialInfo) -> None:
        super().begin_trial(info)
        rng = np.random.default_rng(info.seed)
        self.symbols = rng.permutation(self.tiles)[None] if self.relabel else None
        self.rng = np.random.default_rng([info.seed, 1])  # the action draws: a stream of their own

    @torch.no_grad()
    def _policy(self, x: np.ndarray, h: Any, start: bool) -> tuple[int, Any]:
        x = relabeled(x[None], self.symbols, self.tiles)
        h = self.net.initial(1) if h is None else h
        logits, _, h = self.net(torch.as_tensor(x)[None], h, torch.tensor([[start]]))
        if not self.sample:
            return int(logits[0, 0].argmax()), h
        p = torch.softmax(logits[0, 0].double(), 0).numpy()
        return int(self.rng.choice(4, p=p / p.sum())), h


def rl2_agent(path: str, sample: bool = False, demonstrations: bool | None = None) -> RL2Agent:
    """The agent of a policy saved by `train` (``policy.pt`` or ``best.pt``); `sample`: see `RL2Agent`;
    `demonstrations`: show it the demonstrations (`TrialPolicyAgent`); default: as it was trained."""
    state = torch.load(path, weights_only=False)
    policy = RL2Policy(state["tiles"] + 6, state["hidden"])
    policy.load_state_dict(state["policy"])
    if demonstrations is None:
        demonstrations = bool(state.get("config", {}).get("demonstrations", False))
    return RL2Agent(policy, state["tiles"], state["relabel"], sample, demonstrations)


def run(args: argparse.Namespace) -> Path:
    """Train from the options `icrl-bench train rl2` parsed (one per `RL2Config` field, plus resume and progress)."""
    fields = {f.name for f in dataclasses.fields(RL2Config)}
    config = RL2Config(**{k: v for k, v in vars(args).items() if k in fields})
    return train(config, resume=args.resume, progress=not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    """``python -m icrl_bench.training.rl2 ...`` is ``icrl-bench train rl2 ...``."""
    from icrl_bench.cli import main as cli

    return cli(["train", "rl2", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
