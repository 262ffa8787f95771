"""`CompactQNetwork`: a causal transformer from `transformers` that reads the compact format and outputs Q-values.

Each position's input is the sum of embeddings of its fields (previous observation, action, reward, landing
tile, episode-ended flag, observation of the next decision, its episode index within the sequence); the backbone is any decoder-only model that
accepts ``inputs_embeds`` (a small Llama by default: rotary positions, like the paper's Llama 3.1); a linear head
gives Q(history, a) for the four actions at every position. Incremental inference passes the backbone's cache,
so a trial is never re-encoded step by step; `IncrementalBatch` does that for many trials at once.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn
from transformers import AutoModel

from icrl_bench.envs.task import Transition
from icrl_bench.training.config import ModelConfig
from icrl_bench.training.formats import FIELD_ORDER, NO_ACTION, NO_REWARD, position_rows
from icrl_bench.training.kv import new_cache

FIELDS = FIELD_ORDER


class CompactQNetwork(nn.Module):
    """Q-values for the 4 actions at every position of compact sequences (see the module docstring)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.embed = nn.ModuleDict(
            {
                "prev_obs": nn.Embedding(config.n_obs + 1, d),
                "action": nn.Embedding(NO_ACTION + 1, d),
                "reward": nn.Embedding(NO_REWARD + 1, d),
                "landed": nn.Embedding(config.n_obs + 1, d),
                "obs": nn.Embedding(config.n_obs, d),
                "done": nn.Embedding(2, d),
                "episode": nn.Embedding(config.max_episodes, d),
            }
        )
        self.backbone = AutoModel.from_config(config.backbone_config())
        self.head = nn.Linear(d, 4)
        self._backbone_arguments = set(inspect.signature(self.backbone.forward).parameters)

    def forward(
        self,
        inputs: dict[str, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        cache: Any = None,
        position_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Any]:
        """``inputs``: FIELDS -> ``[batch, positions]`` integer tensors. Returns (Q ``[batch, positions, 4]``, cache).

        `attention_mask` covers the cached positions too when a cache is passed; `position_ids` default to
        0, 1, ... after the cached positions (pass them when padding leaves holes).
        """
        episode = inputs["episode"].clamp(max=self.config.max_episodes - 1)
        x = sum(self.embed[f](episode if f == "episode" else inputs[f]) for f in FIELDS)
        kwargs: dict[str, Any] = {}
        if cache is not None:  # newer transformers call the argument `cache`, older ones `past_key_values`
            kwargs["cache" if "cache" in self._backbone_arguments else "past_key_values"] = cache
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        out = self.backbone(inputs_embeds=x, attention_mask=attention_mask, use_cache=cache is not None, **kwargs)
        return self.head(out.last_hidden_state), cache

    # What `IncrementalBatch` and `DQNAgent` need of a network (`TextQNetwork` has the same three).
    row_width = len(FIELDS)

    @property
    def position_limit(self) -> int | None:
        """The longest context the backbone can take: absolute position tables (gpt2) cannot be trimmed."""
        return self.config.max_positions if self.config.backbone == "gpt2" else None

    def context_rows(self, pending: list[Transition], first_obs: int | None, next_obs: int | None,
                     episode: int) -> tuple[list[tuple[int, ...]], int]:  # fmt: skip
        """The positions that continue a trial by `pending` transitions (`formats.position_rows`)."""
        return position_rows(pending, self.config.n_obs, first_obs, next_obs, episode)

    def incremental_q(self, data: torch.Tensor, mask: torch.Tensor, cache: Any, positions: torch.Tensor) -> torch.Tensor:
        """Q ``[batch, width, 4]`` of new positions ``data[..., field]`` (the cache holds the earlier ones)."""
        q, _ = self(dict(zip(FIELDS, data.unbind(-1))), attention_mask=mask, cache=cache, position_ids=positions)
        return q


class CompactLearner:
    """A `CompactQNetwork` and its target copy, as the trainer uses any network (`TextQNetwork` is the other).

    The trainer needs: ``net`` (what plays), ``batch``, ``q_values`` (online or target), ``update_target``,
    ``trainable_parameters`` and ``weights``/``load_weights`` (what a checkpoint holds).
    """

    def __init__(self, config: ModelConfig) -> None:
        import copy

        self.net = CompactQNetwork(config)
        self.target = copy.deepcopy(self.net).eval()  # always eval: dropout would make its targets noisy
        self.target.requires_grad_(False)

    def batch(self, trials: Any, max_positions: int) -> dict[str, torch.Tensor]:
        from icrl_bench.training.dqn import make_batch

        return make_batch(trials, max_positions, self.net.config.n_obs)

    def q_values(self, batch: dict[str, torch.Tensor], target: bool = False) -> torch.Tensor:
        """Q ``[batch, positions, 4]`` (right-padded sequences: causal attention never reads the padding)."""
        q, _ = (self.target if target else self.net)({f: batch[f] for f in FIELDS})
        return q

    @torch.no_grad()
    def update_target(self, alpha: float) -> None:
        for t, o in zip(self.target.parameters(), self.net.parameters()):
            t.mul_(1 - alpha).add_(o, alpha=alpha)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.net.parameters())

    def weights(self) -> dict[str, Any]:
        return {"model": self.net.state_dict(), "target": self.target.state_dict()}

    def load_weights(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.target.load_state_dict(state["target"])
        self.target.eval()


class IncrementalBatch:
    """Incremental inference for many sequences at once (one cache; ragged feeds are padded and masked out).

    ``feed(rows)`` appends ``rows[b]`` (a list of position tuples in `FIELDS` order, possibly empty) to sequence
    b and returns the Q-values at each sequence's newest position. Padding slots are masked from every later
    query and positions ids skip them, so each sequence sees exactly what a full pass over it would see.
    With `window`, only the newest `window` slots are kept (trimmed in chunks of 64): a bounded context for
    trials far longer than anything trained on (an agent stuck until the step limit, say).
    """

    def __init__(self, net: Any, batch: int, window: int | None = None) -> None:
        self.net = net
        self.window = window
        self.cache = new_cache()  # grows in place: a step copies only its new tokens (training/kv.py)
        self.mask = torch.zeros(batch, 0, dtype=torch.long)
        self.length = torch.zeros(batch, dtype=torch.long)  # real positions of each sequence
        self.last_q = torch.zeros(batch, 4)

    @torch.no_grad()
    def feed(self, rows: list[list[tuple[int, ...]]]) -> torch.Tensor:
        batch = len(self.length)
        if len(rows) != batch:
            raise ValueError(f"feed got {len(rows)} row lists for a batch of {batch}")
        width = max(len(r) for r in rows)
        if width == 0:
            return self.last_q
        data = torch.zeros(batch, width, self.net.row_width, dtype=torch.long)
        real = torch.zeros(batch, width, dtype=torch.long)
        for b, r in enumerate(rows):
            if r:
                data[b, : len(r)] = torch.tensor(r, dtype=torch.long)
                real[b, : len(r)] = 1
        positions = self.length.unsqueeze(1) + torch.arange(width).unsqueeze(0)
        limit = self.net.position_limit
        if limit is not None and int(positions.max()) >= limit:
            raise ValueError(f"this network has absolute positions and a context of at most {limit}; a trial has "
                             f"reached {int(positions.max()) + 1} (a window cannot trim absolute positions): use a "
                             "rotary backbone (llama) or a larger --model-max-positions")  # fmt: skip
        self.mask = torch.cat([self.mask, real], dim=1)
        device = next(self.net.parameters()).device
        q = self.net.incremental_q(data.to(device), self.mask.to(device), self.cache, positions.to(device)).cpu()
        counts = real.sum(1)
        fed = counts > 0
        last = (counts - 1).clamp(min=0)
        self.last_q = torch.where(fed.unsqueeze(1), q[torch.arange(batch), last], self.last_q)
        self.length += counts
        if self.window is not None and self.mask.shape[1] >= self.window + 64:
            self._trim(self.window)
        return self.last_q

    def _trim(self, keep: int) -> None:
        """Forget all but the newest `keep` slots (rotary attention only sees relative positions, so the kept
        ones are unchanged). Works on the cache layers of `transformers` 4.5x and 5.x."""
        layers = getattr(self.cache, "layers", None)
        if layers is not None:
            for layer in layers:
                layer.keys = layer.keys[..., -keep:, :].contiguous()
                layer.values = layer.values[..., -keep:, :].contiguous()
        elif hasattr(self.cache, "key_cache"):
            for i in range(len(self.cache.key_cache)):
                self.cache.key_cache[i] = self.cache.key_cache[i][..., -keep:, :].contiguous()
                self.cache.value_cache[i] = self.cache.value_cache[i][..., -keep:, :].contiguous()
        else:
            raise RuntimeError("this transformers version's DynamicCache cannot be trimmed; play without a window")
        self.mask = self.mask[:, -keep:]

    def keep(self, rows: torch.Tensor | list[int]) -> None:
        """Keep only these sequences (in this order), e.g. when the others have finished; they are renumbered."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        self.cache.batch_select_indices(rows)
        self.mask, self.length, self.last_q = self.mask[rows], self.length[rows], self.last_q[rows]
