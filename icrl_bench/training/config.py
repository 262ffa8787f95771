"""The settings of a training run and of its network, importable without torch (the CLI builds its options
from them); `icrl_bench.training.dqn` and `icrl_bench.training.model` re-export them."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Size of the Q-network (defaults: the shipped reference models, 1.1M parameters, trainable on a CPU).

    ``n_obs=100`` covers every suite's maps (up to 10 x 10); observation embeddings of tiles that the
    training maps never have stay as initialised (an honest handicap out of distribution).
    """

    n_obs: int = 100  # observations are 0..n_obs-1
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    max_positions: int = 2048  # the backbone's rotary table (contexts are cut or windowed far below this)
    max_episodes: int = 128  # episode-index embeddings (indices beyond share the last one)
    backbone: str = "llama"  # any `transformers` model type with inputs_embeds, e.g. "llama", "gpt2"

    def backbone_config(self) -> Any:
        """The `transformers` config of the backbone."""
        from transformers import AutoConfig

        if self.backbone == "gpt2":
            return AutoConfig.for_model("gpt2", vocab_size=1, n_embd=self.d_model, n_layer=self.n_layers,
                                        n_head=self.n_heads, n_positions=self.max_positions)  # fmt: skip
        return AutoConfig.for_model(
            self.backbone, vocab_size=1, hidden_size=self.d_model, intermediate_size=4 * self.d_model,
            num_hidden_layers=self.n_layers, num_attention_heads=self.n_heads, num_key_value_heads=self.n_heads,
            max_position_embeddings=self.max_positions, bos_token_id=None, eos_token_id=None, pad_token_id=None,
        )  # fmt: skip


MODES = ("offline", "online", "hybrid")
OBJECTIVES = ("dqn", "distill")
ONLINE_TRIALS_FROM = 1_000_000  # training-suite trial indices of online rollouts (datasets use 0, 1, ...)
EVAL_TRIALS_FROM = 900_000_000  # held-out training-distribution trials of the quick evaluation
RESUMABLE_CHANGES = ("steps",)  # a run may be resumed with more (or fewer) steps; every other setting must match
LOG_COLUMNS = ["step", "loss", "q_mean", "target_mean", "lr", "seconds", "replay_trials", "eval_auc", "eval_first",
               "eval_last10"]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; defaults are the paper's where they apply (gamma, Polyak 0.1, AdamW)."""

    data: str = ""  # a dataset (.npz); required offline and hybrid, optional seed of the replay online
    out: str = "runs/dqn"
    objective: str = "dqn"
    mode: str = "offline"
    steps: int = 1000
    batch_size: int = 16
    max_positions: int = 256  # sequences are cut to this prefix (30 episodes of a decent learner fit)
    lr: float = 5e-4
    warmup: int = 10
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    gamma: float = 0.9
    reward_scale: float = 1.0  # the paper used 30 to match Llama's logits; 1 suits a model trained from scratch
    polyak: float = 0.1
    loss: str = "huber"  # or "paper": mean(((Q - y) / mean(y))^2)
    cross_episode: bool = False
    suite: str = "id"  # distribution of online maps and of the quick evaluation
    online_episodes: int = 30
    rollout_trials: int = 16
    rollout_every: int = 8
    epsilon: float = 0.3
    replay_size: int = 2000
    data_fraction: float = 0.5
    teacher: str = ""  # distill online/hybrid: the built-in agent that labels the network's own trials (DAgger)
    eval_every: int = 250  # 0: no quick evaluation
    eval_trials: int = 32
    seed: int = 0
    threads: int = 0  # torch threads; 0: all cores
    log_every: int = 10
    save_every: int = 100
    model: ModelConfig = ModelConfig()

    def __post_init__(self) -> None:
        for name, value, allowed in (("objective", self.objective, OBJECTIVES), ("mode", self.mode, MODES),
                                     ("loss", self.loss, ("huber", "paper"))):  # fmt: skip
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if not 0 < self.polyak <= 1:
            raise ValueError(f"polyak must be in (0, 1], got {self.polyak!r}")
        if self.mode != "online" and not self.data:
            raise ValueError(f"mode {self.mode!r} needs a dataset (--data)")
        if self.objective == "distill" and self.mode != "offline" and not self.teacher:
            raise ValueError("distillation online or hybrid needs a --teacher to label the network's trials (e.g. explorer)")
        if self.teacher:
            from icrl_bench.baselines import BUILTIN_AGENTS

            if self.objective != "distill" or self.teacher not in BUILTIN_AGENTS or self.teacher == "oracle":
                raise ValueError(f"--teacher is for distillation, one of random, qlearning, explorer; got {self.teacher!r}")
        if not 0 <= self.data_fraction <= 1 or not 0 <= self.epsilon <= 1:
            raise ValueError("data_fraction and epsilon must lie in [0, 1]")
        if min(self.steps, self.batch_size, self.max_positions, self.rollout_trials, self.rollout_every,
               self.replay_size, self.online_episodes) < 1:  # fmt: skip
            raise ValueError("steps, batch_size, max_positions and the online sizes must be positive")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        data["model"] = ModelConfig(**data["model"])
        return cls(**data)

