"""The standard protocol: agent interface, suites, runner, metrics and results."""

from icrl_bench.protocol.agent import Agent, BatchedAgent, TrialInfo
from icrl_bench.protocol.evaluation import EvaluationError, evaluate
from icrl_bench.protocol.metrics import suite_metrics
from icrl_bench.protocol.runner import AgentError, ProtocolOptions, TrialRecord, run_trials
from icrl_bench.protocol.suites import DEFAULT_SUITES, SUITES, Suite, evaluation_map_ids, get_suite

__all__ = [
    "DEFAULT_SUITES",
    "SUITES",
    "Agent",
    "AgentError",
    "BatchedAgent",
    "EvaluationError",
    "ProtocolOptions",
    "Suite",
    "TrialInfo",
    "TrialRecord",
    "evaluate",
    "evaluation_map_ids",
    "get_suite",
    "run_trials",
    "suite_metrics",
]
