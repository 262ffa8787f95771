"""Frozen Lake environments for in-context RL: tasks, generators, single and batched envs, rendering, text."""

from icrl_bench.envs.dynamics import optimal_success_probability, random_success_probability
from icrl_bench.envs.frozen_lake import ICRLFrozenLakeEnv
from icrl_bench.envs.generator import MapGenerator
from icrl_bench.envs.registration import ENV_SPECS, register_envs
from icrl_bench.envs.rendering import draw_trajectories
from icrl_bench.envs.schedule import CHANGE_KINDS, FixedTask, TaskSchedule
from icrl_bench.envs.stitching import PAPER_STITCHING_TASK, StitchingGenerator
from icrl_bench.envs.task import ACTION_NAMES, Demonstration, InvalidTaskError, TaskSpec, Transition
from icrl_bench.envs.text import TEXT_FORMATS, TextFormat, format_llama3, format_plain, format_words, parse_action
from icrl_bench.envs.vector import ICRLFrozenLakeVectorEnv

__all__ = [
    "ACTION_NAMES",
    "CHANGE_KINDS",
    "ENV_SPECS",
    "PAPER_STITCHING_TASK",
    "Demonstration",
    "FixedTask",
    "ICRLFrozenLakeEnv",
    "ICRLFrozenLakeVectorEnv",
    "InvalidTaskError",
    "MapGenerator",
    "StitchingGenerator",
    "TaskSchedule",
    "TaskSpec",
    "Transition",
    "draw_trajectories",
    "format_llama3",
    "format_plain",
    "format_words",
    "TEXT_FORMATS",
    "TextFormat",
    "optimal_success_probability",
    "parse_action",
    "random_success_probability",
    "register_envs",
]
