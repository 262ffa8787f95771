"""training/kv.py: the cache that grows in place and the grouped attention are exact rearrangements."""

import inspect

import pytest
import tiny_llm
import torch
from transformers import DynamicCache

from icrl_bench.training import kv
from icrl_bench.training.model import IncrementalBatch

pytestmark = pytest.mark.skipif(kv.DynamicLayer is None, reason="this transformers has no layered caches")


def _models():
    plain, grouped = tiny_llm.model(seed=3), tiny_llm.model(seed=3)
    assert plain.config.num_key_value_heads < plain.config.num_attention_heads  # the case being tested
    assert kv.use_grouped_attention(grouped) and grouped.config._attn_implementation == kv.ATTENTION
    assert plain.config._attn_implementation == "sdpa"
    return plain, grouped


def _cache_kw(model, cache):  # newer transformers call it `cache`, older ones `past_key_values`
    return {"cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values": cache}


def test_grouped_attention_gives_the_logits_of_sdpa_with_padding_and_a_cache():
    plain, grouped = _models()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 300, (3, 40), generator=g)
    mask = torch.ones(3, 40, dtype=torch.long)
    mask[0, 30:] = 0  # right padding
    mask[2, :5] = 0  # left padding
    with torch.no_grad():
        a = plain(input_ids=ids, attention_mask=mask).logits
        b = grouped(input_ids=ids, attention_mask=mask).logits
        assert torch.allclose(a[mask.bool()], b[mask.bool()], atol=1e-5)
        # Several tokens at once against a cache: the case the fold exists for (sdpa copies the keys there).
        caches = [kv.new_cache(), kv.new_cache()]
        for model, cache in zip((plain, grouped), caches):
            model(input_ids=ids[:, :36], attention_mask=mask[:, :36], **_cache_kw(model, cache))
        a = plain(input_ids=ids[:, 36:], attention_mask=mask, **_cache_kw(plain, caches[0])).logits
        b = grouped(input_ids=ids[:, 36:], attention_mask=mask, **_cache_kw(grouped, caches[1])).logits
    assert torch.allclose(a[mask[:, 36:].bool()], b[mask[:, 36:].bool()], atol=1e-5)


class _Net(torch.nn.Module):
    """The smallest network `IncrementalBatch` plays: a tiny Llama's logits of 4 tokens."""

    row_width = 1
    position_limit = None

    def __init__(self, model):
        super().__init__()
        self.model = model

    def incremental_q(self, data, mask, cache, positions):
        out = self.model(input_ids=data[..., 0], attention_mask=mask, position_ids=positions,
                         **_cache_kw(self.model, cache))
        return out.logits[..., :4]


def test_a_growing_cache_plays_exactly_like_the_default_one_through_trims_and_batch_selection():
    model = tiny_llm.model(seed=4)
    g = torch.Generator().manual_seed(1)
    feeds = [[[(int(t),) for t in torch.randint(1, 300, (int(n),), generator=g)] for n in torch.randint(0, 6, (4,), generator=g)]
             for _ in range(60)]  # fmt: skip
    runs = []
    for cache in (DynamicCache(), kv.new_cache()):
        batch = IncrementalBatch(_Net(model), 4, window=48)  # trims every 64 slots past 48
        batch.cache = cache
        out = []
        for step, rows in enumerate(feeds):
            if step == 40:
                batch.keep([3, 0, 2])  # trial 1 finished
            rows = rows if step < 40 else [rows[3], rows[0], rows[2]]
            out.append(batch.feed(rows).clone())
        runs.append(out)
    growing = [layer for layer in cache.layers if isinstance(layer, kv.GrowingLayer)]
    assert len(growing) == len(cache.layers) > 0  # the growing cache was the one in use
    assert growing[0].keys.shape[-2] < 48 + 64  # and it was trimmed
    for a, b in zip(*runs):
        assert torch.allclose(a, b, atol=1e-5)
