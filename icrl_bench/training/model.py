"""`CompactQNetwork`: a causal transformer from `transformers` that reads the compact format and outputs Q-values.

Each position's input is the sum of embeddings of its fields (previous observation, action, reward, new
observation, episode-ended flag, episode index within the sequence); the backbone is any decoder-only model that
accepts ``inputs_embeds`` (a small Llama by default: rotary positions, like the paper's Llama 3.1); a linear head
gives Q(history, a) for the four actions at every position. Incremental inference passes the backbone's cache,
so a trial is never re-encoded step by step.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel

from icrl_bench.training.formats import NO_ACTION, NO_REWARD


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Size of the Q-network (defaults: ~0.2M parameters, trainable on a laptop CPU)."""

    n_obs: int = 25  # observations are 0..n_obs-1 (the suite's largest map)
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    max_positions: int = 2048
    max_episodes: int = 128  # episode-index embeddings (indices beyond share the last one)
    backbone: str = "llama"  # any `transformers` model type with inputs_embeds, e.g. "llama", "gpt2"

    def backbone_config(self) -> Any:
        """The `transformers` config of the backbone."""
        if self.backbone == "gpt2":
            return AutoConfig.for_model("gpt2", vocab_size=1, n_embd=self.d_model, n_layer=self.n_layers,
                                        n_head=self.n_heads, n_positions=self.max_positions)  # fmt: skip
        return AutoConfig.for_model(
            self.backbone, vocab_size=1, hidden_size=self.d_model, intermediate_size=4 * self.d_model,
            num_hidden_layers=self.n_layers, num_attention_heads=self.n_heads, num_key_value_heads=self.n_heads,
            max_position_embeddings=self.max_positions, bos_token_id=None, eos_token_id=None, pad_token_id=None,
        )  # fmt: skip


FIELDS = ("prev_obs", "action", "reward", "obs", "done", "episode")


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
                "obs": nn.Embedding(config.n_obs, d),
                "done": nn.Embedding(2, d),
                "episode": nn.Embedding(config.max_episodes, d),
            }
        )
        self.backbone = AutoModel.from_config(config.backbone_config())
        self.head = nn.Linear(d, 4)
        self._backbone_arguments = set(inspect.signature(self.backbone.forward).parameters)

    def forward(
        self, inputs: dict[str, torch.Tensor], attention_mask: torch.Tensor | None = None, cache: Any = None
    ) -> tuple[torch.Tensor, Any]:
        """``inputs``: FIELDS -> ``[batch, positions]`` integer tensors. Returns (Q ``[batch, positions, 4]``, cache)."""
        episode = inputs["episode"].clamp(max=self.config.max_episodes - 1)
        x = sum(self.embed[f](episode if f == "episode" else inputs[f]) for f in FIELDS)
        kwargs: dict[str, Any] = {}
        if cache is not None:  # newer transformers call the argument `cache`, older ones `past_key_values`
            kwargs["cache" if "cache" in self._backbone_arguments else "past_key_values"] = cache
        out = self.backbone(inputs_embeds=x, attention_mask=attention_mask, use_cache=cache is not None, **kwargs)
        return self.head(out.last_hidden_state), cache
