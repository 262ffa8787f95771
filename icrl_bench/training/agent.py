"""`DQNAgent`: a trained `CompactQNetwork` playing the protocol greedily, with incremental inference.

Each trial keeps the backbone's cache: every step feeds only the new positions (the transition just observed,
and an episode-start position when an episode begins), never the history again. Demonstrations become
episodes of the context like any other. Actions are the argmax of the four Q-values (ties: lowest index).

    icrl-bench evaluate icrl_bench.training.agent:DQNAgent --agent-arg checkpoint=runs/dqn/checkpoint.pt
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers import DynamicCache

from icrl_bench.envs.task import Transition
from icrl_bench.protocol.agent import TrialInfo
from icrl_bench.training.formats import NO_ACTION, NO_REWARD
from icrl_bench.training.model import FIELDS, CompactQNetwork, ModelConfig


def load_network(checkpoint: str) -> CompactQNetwork:
    """The online network of a `train_dqn` checkpoint, in eval mode."""
    state = torch.load(checkpoint, weights_only=False, map_location="cpu")
    net = CompactQNetwork(ModelConfig(**state["config"]["model"]))
    net.load_state_dict(state["model"])
    return net.eval()


class _TrialContext:
    def __init__(self, n_obs: int) -> None:
        self.n_obs = n_obs
        self.cache = DynamicCache()
        self.pending: list[tuple[int, ...]] = []
        self.history: list[tuple[int, ...]] = []  # every position fed so far (for checks)
        self.decisions: list[tuple[int, torch.Tensor]] = []  # (position, Q-values) of each action chosen
        self.episode = 0
        self.at_start = True

    def start(self, obs: int) -> None:
        self.pending.append((self.n_obs, NO_ACTION, NO_REWARD, obs, 0, self.episode))
        self.at_start = False

    def add(self, t: Transition) -> None:
        if self.at_start:
            self.start(t.obs)
        done = int(t.terminated or t.truncated)
        self.pending.append((t.obs, t.action, int(t.reward > 0), t.next_obs, done, self.episode))
        if done:
            self.at_start = True
            self.episode += 1


class DQNAgent:
    """Greedy play of a trained Q-network through the batched interface (one cache per trial)."""

    def __init__(self, checkpoint: str) -> None:
        self.net = load_network(checkpoint)
        self.n_obs = self.net.config.n_obs
        self.trials: list[_TrialContext] = []

    def begin_trials(self, infos: Sequence[TrialInfo]) -> None:
        for info in infos:
            if info.n_observations > self.n_obs:
                raise ValueError(f"this network sees {self.n_obs} observations, the suite has {info.n_observations}")
        self.trials = [_TrialContext(self.n_obs) for _ in infos]

    def observe_batch(self, transitions: Sequence[Transition], trials: Sequence[int], demonstration: bool = False) -> None:
        for t, j in zip(transitions, trials):
            self.trials[j].add(t)

    @torch.no_grad()
    def q_values(self, trial: int) -> torch.Tensor:
        """Feed the trial's pending positions; Q-values at its last position."""
        ctx = self.trials[trial]
        rows = torch.tensor(ctx.pending, dtype=torch.long).T.unsqueeze(1)  # [fields, 1, new]
        q, _ = self.net({f: rows[i] for i, f in enumerate(FIELDS)}, cache=ctx.cache)
        ctx.history += ctx.pending
        ctx.pending = []
        ctx.decisions.append((len(ctx.history) - 1, q[0, -1]))
        return q[0, -1]

    def act_batch(self, obs: Sequence[int], trials: Sequence[int]) -> list[int]:
        actions = []
        for o, j in zip(obs, trials):
            ctx = self.trials[j]
            if ctx.at_start:
                ctx.start(int(o))
            actions.append(int(torch.argmax(self.q_values(j))))
        return actions

    def history_inputs(self, trial: int) -> dict[str, Any]:
        """The whole context of a trial as model inputs (to check incremental inference against)."""
        rows = torch.tensor(self.trials[trial].history, dtype=torch.long).T.unsqueeze(1)
        return {f: rows[i] for i, f in enumerate(FIELDS)}
