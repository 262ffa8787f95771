"""Reference agents: clients of the protocol like any user's agent.

`BUILTIN_AGENTS` maps the names `icrl-bench evaluate` accepts to their classes.
"""

from icrl_bench.baselines.explorer import ExplorerAgent
from icrl_bench.baselines.oracle import OracleAgent
from icrl_bench.baselines.qlearning import QLearningAgent
from icrl_bench.baselines.random_agent import RandomAgent

BUILTIN_AGENTS = {
    "random": RandomAgent,
    "oracle": OracleAgent,
    "qlearning": QLearningAgent,
    "explorer": ExplorerAgent,
}

__all__ = ["BUILTIN_AGENTS", "ExplorerAgent", "OracleAgent", "QLearningAgent", "RandomAgent"]
