"""Every registered environment id, in one place, with its keyword arguments and a one-line description."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from icrl_bench.envs.stitching import PAPER_STITCHING_TASK

ENTRY_POINT = "icrl_bench.envs.frozen_lake:ICRLFrozenLakeEnv"
VECTOR_ENTRY_POINT = "icrl_bench.envs.vector:ICRLFrozenLakeVectorEnv"

# id -> (keyword arguments, description). Unlisted arguments take MapGenerator's defaults: the paper's
# in-distribution maps (3-5 x 3-5, p_start 0.1, p_goal 0.1, p_hole 0.2, min_hops 4, not slippery, 100 steps).
ENV_SPECS: dict[str, tuple[dict[str, Any], str]] = {
    "ICRLFrozenLake-v0": ({}, "paper in-distribution maps, 3-5 x 3-5"),
    "ICRLFrozenLakeLarge-v0": ({"height": (6, 7), "width": (6, 7)}, "paper out-of-distribution maps, 6-7 x 6-7"),
    "ICRLFrozenLakeXL-v0": (
        {"height": (8, 10), "width": (8, 10), "max_steps": 200},
        "larger still, 8-10 x 8-10, 200-step limit",
    ),
    "ICRLFrozenLakeDense-v0": ({"p_hole": 0.35}, "3-5 x 3-5 with more holes (p_hole 0.35)"),
    "ICRLFrozenLakeSlippery-v0": (
        {"success_rate": 1.0 / 3.0},
        "3-5 x 3-5, slippery as FrozenLake-v1 (moves as intended with probability 1/3)",
    ),
    "ICRLFrozenLakePermuted-v0": ({"permute_actions": True}, "3-5 x 3-5, a random action permutation per task"),
    "ICRLFrozenLakeNonStationary-v0": (
        {"change_every": 30},
        "3-5 x 3-5, the map is replaced by a fresh one every 30 episodes, without a signal",
    ),
    "ICRLFrozenLakeStitching-v0": ({"stitching": True}, "generated stitching tasks, 4-6 x 4-6, two demonstrations"),
    "ICRLFrozenLakeStitchingPaper-v0": (
        {"task": PAPER_STITCHING_TASK.to_dict()},
        "the paper's fixed 6x4 stitching task and its two demonstrations",
    ),
}


SCHEDULE_KWARGS = ("episodes_per_task", "change_every", "change_kind", "n_mutations")


def source_kwargs(env_id: str) -> dict[str, Any]:
    """The task-source arguments of a registered id (its kwargs without the schedule ones)."""
    return {k: v for k, v in ENV_SPECS[env_id][0].items() if k not in SCHEDULE_KWARGS}


TRIAL_ID = "ICRLFrozenLakeTrial-v0"  # a whole trial as one episode, over any id above (`base=`): envs/trial.py


def register_envs() -> None:
    """Register every id of `ENV_SPECS`, and `TRIAL_ID`, with Gymnasium (idempotent)."""
    if TRIAL_ID not in gym.registry:
        gym.register(id=TRIAL_ID, entry_point="icrl_bench.envs.trial:make_trial_env",
                     vector_entry_point="icrl_bench.envs.trial:make_trial_vector_env", max_episode_steps=None)  # fmt: skip
    for env_id, (kwargs, _) in ENV_SPECS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            kwargs=kwargs,
            max_episode_steps=None,  # the step limit belongs to the task (TaskSpec.max_steps), see the env docstring
            nondeterministic=False,
        )
