"""icrl-bench: a Gymnasium benchmark for in-context reinforcement learning on hidden Frozen Lake maps.

Importing the package registers its environments: ``gymnasium.make("ICRLFrozenLake-v0")``.
"""

from icrl_bench.envs import register_envs

__version__ = "0.1.0"

register_envs()
