"""Incremental play at long contexts: a key/value cache that grows in place, and grouped-query attention
without copying the keys.

An agent feeds a few tokens a step against a cache of thousands. With `transformers`' defaults two copies of
the whole cache dominate such a step (measured on SmolLM2-135M, 25 trials at a 2,048-token cache, one CPU
thread): `repeat_kv`, which expands the 3 key/value heads to the 9 query heads before attention whenever a mask
is given and more than one token is fed (59% of the step), and `DynamicLayer.update`'s `torch.cat` of the whole
cache (14%). The matrix products were 4%.

- `GrowingLayer` writes new keys and values into spare capacity of a buffer (grown by a quarter when full) and
  hands out views of it, so a step copies only its new tokens. Code that replaces ``keys``/``values`` (a trim, a
  batch selection) simply makes the next update start a new buffer from them.
- `grouped_sdpa` folds each group of query heads that share a key/value head into the query length
  (``[B, H, q, d] -> [B, H_kv, g*q, d]``, the mask repeated along it), so attention reads each key once. The same
  arithmetic as `transformers`' ``sdpa`` (which does this fold itself only for one query token); registered as
  the attention implementation ``icrl_grouped_sdpa``.

Both are exact rearrangements: Q-values agree with the default path to float rounding (tested).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache

try:  # transformers >= 5: layered caches
    from transformers.cache_utils import DynamicLayer
except ImportError:  # pragma: no cover - older transformers keep the default cache
    DynamicLayer = None

ATTENTION = "icrl_grouped_sdpa"


if DynamicLayer is not None:

    class GrowingLayer(DynamicLayer):
        """A `DynamicLayer` whose update copies only the new tokens (see the module docstring)."""

        _buffers: tuple[torch.Tensor, torch.Tensor] | None = None
        _handed: torch.Tensor | None = None

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            old = self.keys.shape[-2] if self.keys.dim() == 4 else 0
            new = key_states.shape[-2]
            buffers = self._buffers
            if (buffers is None or self.keys is not self._handed or old + new > buffers[0].shape[-2]
                    or buffers[0].shape[:-2] != key_states.shape[:-2]):  # fmt: skip
                capacity = old + new + max(256, (old + new) // 4)
                keys = key_states.new_empty((*key_states.shape[:-2], capacity, key_states.shape[-1]))
                values = value_states.new_empty((*value_states.shape[:-2], capacity, value_states.shape[-1]))
                if old:
                    keys[..., :old, :] = self.keys
                    values[..., :old, :] = self.values
                buffers = self._buffers = (keys, values)
            buffers[0][..., old : old + new, :] = key_states
            buffers[1][..., old : old + new, :] = value_states
            self.keys, self.values = buffers[0][..., : old + new, :], buffers[1][..., : old + new, :]
            self._handed = self.keys
            return self.keys, self.values


def new_cache() -> Any:
    """An empty cache for incremental play: `GrowingLayer`s where this `transformers` has layered caches."""
    cache = DynamicCache()
    if DynamicLayer is not None and getattr(cache, "layer_class_to_replicate", None) is DynamicLayer:
        cache.layer_class_to_replicate = GrowingLayer
    return cache


def grouped_sdpa(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                 attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                 **kwargs: Any) -> tuple[torch.Tensor, None]:  # fmt: skip
    """`transformers`' sdpa attention with shared key/value heads read once (see the module docstring)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    b, h, q, d = query.shape
    if groups == 1 or attention_mask is None or attention_mask.dim() != 4 or attention_mask.shape[1] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)  # fmt: skip
    folded = query.reshape(b, h // groups, groups * q, d)
    mask = attention_mask.unsqueeze(2).expand(-1, -1, groups, -1, -1)
    mask = mask.reshape(attention_mask.shape[0], 1, groups * q, attention_mask.shape[-1])
    out = torch.nn.functional.scaled_dot_product_attention(folded, key, value, attn_mask=mask, dropout_p=dropout,
                                                           scale=scaling)  # fmt: skip
    return out.reshape(b, h, q, value.shape[-1]).transpose(1, 2).contiguous(), None


def use_grouped_attention(model: Any) -> bool:
    """Make `model` (a `transformers` model, possibly wrapped by peft) attend with `grouped_sdpa` where it uses
    sdpa now; False (and nothing changed) where this `transformers` cannot register attention functions."""
    try:
        from transformers import AttentionInterface, AttentionMaskInterface
        from transformers.masking_utils import sdpa_mask
    except ImportError:  # pragma: no cover - transformers < 4.48
        return False
    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa":
        return False
    AttentionInterface.register(ATTENTION, grouped_sdpa)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(ATTENTION)
    else:  # pragma: no cover - older transformers
        config._attn_implementation = ATTENTION
    return True
