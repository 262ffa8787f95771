"""Reference models shipped with the package: small in-context learners trained on CPU (see their model cards).

`icrl-bench evaluate icrl-dqn-small` plays one (needs torch and transformers: ``pip install -e ".[llm]"``).
Each ``<name>.pt`` holds the network's config and weights and how it was trained; ``<name>.md`` is its card.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

REFERENCE_MODELS = {
    "icrl-dqn-small": "double DQN (online, replay seeded with Q-learning histories), 1.1M parameters, CPU",
    "icrl-distill-small": "algorithm distillation of the explorer baseline, 1.1M parameters, CPU",
}


def model_path(name: str) -> Path:
    """The weights file of a shipped model; a clear error for an unknown name or a missing file."""
    if name not in REFERENCE_MODELS:
        raise KeyError(f"unknown reference model {name!r}; shipped: {', '.join(REFERENCE_MODELS)}")
    path = Path(str(resources.files("icrl_bench.models") / f"{name}.pt"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall icrl-bench, or retrain it by its model card's command")
    return path


def reference_agent(name: str, **kwargs: object) -> object:
    """A `DQNAgent` playing shipped model `name` (keyword options go to `DQNAgent`)."""
    try:
        from icrl_bench.training.agent import DQNAgent
    except ImportError as e:
        raise ImportError(f"{name} needs torch and transformers: pip install -e '.[llm]' ({e})") from e
    return DQNAgent(checkpoint=str(model_path(name)), **kwargs)  # type: ignore[arg-type]
