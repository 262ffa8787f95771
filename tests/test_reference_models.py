"""The shipped reference models: they load by name and learn in context better than chance."""

import numpy as np
import pytest

from icrl_bench.agents import AgentSpec, AgentSpecError
from icrl_bench.models import ADAPTER_MODELS, REFERENCE_MODELS, model_path
from icrl_bench.protocol import run_trials
from icrl_bench.protocol.suites import SUITES

SMALL_MODELS = sorted(set(REFERENCE_MODELS) - set(ADAPTER_MODELS) - {"llm"})  # LLM agents: tests/test_llm.py

TRIALS = list(range(20))


def _success(agent) -> np.ndarray:
    records = sorted(run_trials(agent, SUITES["id"], TRIALS), key=lambda r: r.trial)
    return np.array([[e.success for e in r.episodes] for r in records])


@pytest.fixture(scope="module")
def random_success():
    return _success(AgentSpec("random").build())


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_a_shipped_model_loads_and_beats_random(name, random_success):
    assert model_path(name).stat().st_size < 20e6
    spec = AgentSpec(name)
    assert not spec.privileged
    ours = _success(spec.build())
    # Well clear of chance on the same trials (random: about 0.15), and better late in the trial than at first.
    assert ours.mean() > random_success.mean() + 0.15
    assert ours[:, -10:].mean() > ours[:, 0].mean()


def test_unknown_options_of_a_shipped_model_are_a_clear_error():
    with pytest.raises(AgentSpecError, match="cannot build icrl-dqn-small"):
        AgentSpec("icrl-dqn-small", {"no_such_option": 1}).build()
