"""`DQNAgent`: a trained `CompactQNetwork` playing the protocol greedily, batched and incremental.

All trials of a batch share one `IncrementalBatch`: each `act_batch` feeds only the new positions of every
acting trial (one per step: the transition just observed, completed with the observation the next action is
chosen in) in a single forward pass, never the history again. Once half the rows belong to finished trials
(all their episodes played), the batch is compacted to the unfinished ones. Demonstrations become positions of the context
like any other transition. Actions are the argmax of the four Q-values (ties: lowest index), or, with
``epsilon > 0`` (online training only), a uniformly random action with that probability.

    icrl-bench evaluate icrl_bench.training.agent:DQNAgent --agent-arg checkpoint=runs/dqn/checkpoint.pt
    icrl-bench evaluate icrl-dqn-small          # the shipped reference model
"""

from __future__ import annotations

import pickle
from typing import Any, Sequence

import numpy as np
import torch

from icrl_bench.envs.task import Transition
from icrl_bench.protocol.agent import TrialInfo
from icrl_bench.training.formats import Relabeling
from icrl_bench.training.model import FIELDS, CompactQNetwork, IncrementalBatch, ModelConfig


def load_network(checkpoint: str) -> CompactQNetwork:
    """The online network of a training checkpoint (or a shipped model file), in eval mode."""
    try:
        state = torch.load(checkpoint, weights_only=False, map_location="cpu")
        config = state["config"]["model"]
        weights = state["model"]
    except (OSError, KeyError, TypeError, RuntimeError, pickle.UnpicklingError, EOFError) as e:
        raise ValueError(f"{checkpoint} is not an icrl-bench checkpoint ({type(e).__name__}: {e})") from None
    net = CompactQNetwork(ModelConfig(**config))
    net.load_state_dict(weights)
    net.trained_positions = int(state["config"].get("max_positions", 0))
    net.relabel = int(state["config"].get("relabel", 0))  # trained on relabeled trials: the agent relabels too
    return net.eval()


class DQNAgent:
    """Play a trained Q-network through the batched interface (one forward pass per step for all trials).

    Any network with ``context_rows``, ``incremental_q``, ``row_width`` and ``position_limit`` plays:
    `CompactQNetwork` (positions) and `TextQNetwork` (tokens; see `llm_agent`).

    Args:
        checkpoint: a `train dqn` / `train distill` checkpoint or a shipped model file.
        net: an in-memory network instead (training uses this for rollouts and quick evaluations).
        epsilon: probability of a random action (per trial: ``epsilon[j]`` if a sequence).
        record: keep every trial's own transitions in ``trajectories`` and the demonstrations it was shown (an
            open one closed as truncated) in ``shown`` (env labels).
        trace: keep (position, Q-values) of every decision in ``decisions`` (for tests).
        window: context window in steps (default: the longest context the checkpoint was trained on, at
            least 512; older steps are forgotten; 0: unbounded).
        relabel: symbols of a network trained with relabeling (`formats.Relabeling`; default: the checkpoint's
            ``relabel`` setting, 0 for none): each trial's tiles and actions are relabeled as in training, by a
            relabeling drawn from its `TrialInfo.seed`, and the chosen symbol is mapped back to its env action.
    """

    def __init__(self, checkpoint: str | None = None, net: CompactQNetwork | None = None, epsilon: Any = 0.0,
                 record: bool = False, trace: bool = False, window: int | None = None,
                 relabel: int | None = None) -> None:  # fmt: skip
        if (checkpoint is None) == (net is None):
            raise ValueError("give exactly one of checkpoint and net")
        self.net = load_network(checkpoint) if checkpoint is not None else net
        trained = int(getattr(self.net, "trained_positions", 0))
        self.window = max(trained, 512) if window is None else int(window)
        self.n_obs = getattr(self.net.config, "n_obs", None)  # text networks read any tile number
        self.relabel = int(getattr(self.net, "relabel", 0) if relabel is None else relabel)
        self.epsilon = epsilon
        self.record, self.trace = record, trace

    def begin_trials(self, infos: Sequence[TrialInfo]) -> None:
        for info in infos:
            seen = self.relabel or self.n_obs
            if seen is not None and info.n_observations > seen:
                raise ValueError(f"this network sees {seen} observations{' (symbols)' if self.relabel else ''}, the "
                                 f"suite has {info.n_observations}")  # fmt: skip
        self.labels = [Relabeling.for_trial(info.seed, self.relabel) if self.relabel else None for info in infos]
        n = len(infos)
        self.batch = IncrementalBatch(self.net, n, self.window or None)
        self.pending: list[list[Transition]] = [[] for _ in range(n)]
        self.started = [False] * n
        self.episode = [0] * n
        self.rngs = [np.random.default_rng(info.seed) for info in infos]
        eps = self.epsilon if isinstance(self.epsilon, (list, tuple, np.ndarray)) else [self.epsilon] * n
        self.trial_epsilon = [float(e) for e in eps]
        self.history: list[list[tuple[int, ...]]] = [[] for _ in range(n)]
        self.decisions: list[list[tuple[int, torch.Tensor]]] = [[] for _ in range(n)]
        self.trajectories: list[list[Transition]] = [[] for _ in range(n)]
        self.shown: list[list[Transition]] = [[] for _ in range(n)]
        self.n_episodes = [info.n_episodes for info in infos]
        self.played = [0] * n  # own (not demonstration) episodes finished
        self.row = list(range(n))  # trial -> row of the batch (-1: dropped)

    def observe_batch(self, transitions: Sequence[Transition], trials: Sequence[int], demonstration: bool = False) -> None:
        if demonstration:  # a demonstration that ends on neither hole nor goal is closed as truncated: the trial
            last = {j: k for k, j in enumerate(trials)}  # goes on from a reset, not from its landing tile
            transitions = [t if k != last[j] or t.terminated or t.truncated else Transition(*t[:5], True)
                           for k, (t, j) in enumerate(zip(transitions, trials))]  # fmt: skip
        for t, j in zip(transitions, trials):
            self.pending[j].append(t if self.labels[j] is None else self.labels[j].transition(t))
            if self.record:  # in env labels
                (self.shown if demonstration else self.trajectories)[j].append(t)
            if not demonstration and (t.terminated or t.truncated):
                self.played[j] += 1

    def context_length(self, trial: int) -> int:
        """Positions (tokens, for text networks) of the trial's context once its pending transitions are fed."""
        fed = int(self.batch.length[self.row[trial]]) if self.row[trial] >= 0 else 0
        return fed + len(self.net.context_rows(self.pending[trial], None, None, 0)[0])

    def finish(self, trial: int) -> None:
        """Declare a trial over before all its episodes are played (its row may be dropped)."""
        self.played[trial] = self.n_episodes[trial]

    def _compact(self) -> None:
        alive = [j for j, r in enumerate(self.row) if r >= 0 and self.played[j] < self.n_episodes[j]]
        rows = sum(r >= 0 for r in self.row)
        if rows >= 8 and 2 * len(alive) <= rows:
            self.batch.keep([self.row[j] for j in alive])
            self.row = [-1] * len(self.row)
            for i, j in enumerate(alive):
                self.row[j] = i

    def act_batch(self, obs: Sequence[int], trials: Sequence[int]) -> list[int]:
        self._compact()
        rows: list[list[tuple[int, ...]]] = [[] for _ in range(len(self.batch.length))]
        for o, j in zip(obs, trials):
            if self.row[j] < 0:
                raise RuntimeError(f"trial {j} was declared finished but is asked to act")
            o = int(o) if self.labels[j] is None else int(self.labels[j].symbols[o])
            first = None
            if not self.started[j]:
                first = self.pending[j][0].obs if self.pending[j] else int(o)
                self.started[j] = True
            new, self.episode[j] = self.net.context_rows(self.pending[j], first, int(o), self.episode[j])
            rows[self.row[j]] = new
            self.pending[j] = []
            if self.trace:
                self.history[j] += new
        q = self.batch.feed(rows)
        actions = []
        for j in trials:
            a = int(torch.argmax(q[self.row[j]]))
            if self.labels[j] is not None:
                a = self.labels[j].env_action(a)
            if self.trial_epsilon[j] > 0 and self.rngs[j].random() < self.trial_epsilon[j]:
                a = int(self.rngs[j].integers(4))
            actions.append(a)
            if self.trace:
                self.decisions[j].append((len(self.history[j]) - 1, q[self.row[j]].clone()))
        return actions

    def history_inputs(self, trial: int) -> dict[str, Any]:
        """The whole context of a trial as model inputs (``trace=True``; to check incremental inference)."""
        rows = torch.tensor(self.history[trial], dtype=torch.long).T.unsqueeze(1)
        return {f: rows[i] for i, f in enumerate(FIELDS)}
