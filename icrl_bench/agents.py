"""`AgentSpec`: how `icrl-bench evaluate AGENT` finds an agent.

AGENT is one of
- a built-in name: ``random``, ``oracle``, ``qlearning``, ``explorer``, or a shipped reference model
  (``icrl-dqn-small``, ``icrl-distill-small``, ``icrl-rl2-small``; these need torch, the first two transformers);
- ``package.module:attr`` (importable) or ``path/to/file.py:attr`` (a file);
- with ``--agent-cmd "..."``: an external process speaking the JSON-lines protocol (`protocol.external`).
``attr`` may be a class (instantiated with the ``--agent-arg`` options), a factory function (called with them)
or a ready instance (no options then). The result must have ``act`` (an `Agent`) or the batched methods.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from icrl_bench.baselines import BUILTIN_AGENTS
from icrl_bench.models import REFERENCE_MODELS
from icrl_bench.protocol.agent import is_batched
from icrl_bench.protocol.external import ExternalAgent


class AgentSpecError(ValueError):
    """An agent specification that cannot be resolved; the message says how to fix it."""


def parse_agent_args(pairs: list[str]) -> dict[str, Any]:
    """``["alpha=0.5", "name=x"]`` -> ``{"alpha": 0.5, "name": "x"}`` (JSON values where they parse)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise AgentSpecError(f"--agent-arg must look like key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@functools.lru_cache(maxsize=32)
def _load_attr(spec: str) -> Any:
    """The object `spec` names; resolved once per process (a user's file is executed once, not per lookup)."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise AgentSpecError(
            f"unknown agent {spec!r}: use a built-in name ({', '.join(BUILTIN_AGENTS)}), "
            "package.module:attr, path/to/file.py:attr, or --agent-cmd"
        )
    if target.endswith(".py") or "/" in target:
        path = Path(target)
        if not path.is_file():
            raise AgentSpecError(f"agent file {target!r} does not exist")
        name = "icrl_bench_user_agent_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
        sys.modules[name] = module  # so that pickling and dataclasses work for classes defined there
        try:
            module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        except Exception as e:
            del sys.modules[name]
            raise AgentSpecError(f"loading agent file {target!r} failed: {type(e).__name__}: {e}") from e
    else:
        if os.getcwd() not in sys.path:  # as `python -m` does: modules of the current folder import
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise AgentSpecError(f"cannot import module {target!r} for agent {spec!r}: {e}") from e
        except Exception as e:
            raise AgentSpecError(f"importing module {target!r} failed: {type(e).__name__}: {e}") from e
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise AgentSpecError(f"{target!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """A picklable recipe for an agent: each worker process builds its own with `build`."""

    name: str | None = None
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    command: str | None = None

    def __post_init__(self) -> None:
        if (self.name is None) == (self.command is None):
            raise AgentSpecError("give either an agent (name, module:attr or file.py:attr) or --agent-cmd, not both")

    @property
    def privileged(self) -> bool:
        """Whether the agent is declared privileged (shown the map): a class or instance attribute.

        Decided from the specification, without building the agent; external processes never are. Only agents
        declared so are ever shown the task, and results record it.
        """
        if self.command is not None or self.name in REFERENCE_MODELS:
            return False
        assert self.name is not None
        obj = BUILTIN_AGENTS[self.name] if self.name in BUILTIN_AGENTS else _load_attr(self.name)
        return getattr(obj, "privileged", False) is True

    @property
    def label(self) -> str:
        """A short name for tables and file names."""
        return self.name if self.name is not None else f"cmd:{self.command}"

    def build(self) -> Any:
        """A fresh agent."""
        if self.command is not None:
            if self.kwargs:
                raise AgentSpecError("--agent-arg does not apply to --agent-cmd agents: pass options in the command")
            return ExternalAgent(self.command)
        assert self.name is not None
        if self.name in REFERENCE_MODELS:
            from icrl_bench.models import reference_agent

            try:
                return reference_agent(self.name, **self.kwargs)
            except (ImportError, FileNotFoundError, TypeError, ValueError) as e:
                raise AgentSpecError(f"cannot build {self.name}: {e}") from e
        obj = BUILTIN_AGENTS[self.name] if self.name in BUILTIN_AGENTS else _load_attr(self.name)
        if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "act") and not is_batched(obj)):
            try:
                agent = obj(**self.kwargs)
            except TypeError as e:
                raise AgentSpecError(f"cannot build agent {self.name!r} with options {self.kwargs}: {e}") from e
            except Exception as e:  # noqa: BLE001 - the agent's own code failed: reported as the agent's error
                raise AgentSpecError(f"building agent {self.name!r} with options {self.kwargs} failed: "
                                     f"{type(e).__name__}: {e}") from e  # fmt: skip
        else:
            if self.kwargs:
                raise AgentSpecError(f"{self.name!r} is an agent instance: it takes no --agent-arg options")
            agent = obj
        if not (callable(getattr(agent, "act", None)) or is_batched(agent)):
            raise AgentSpecError(
                f"{self.name!r} gave {type(agent).__name__}, which is not an agent: it needs act(obs) "
                "(see icrl_bench.protocol.agent.Agent) or begin_trials/act_batch/observe_batch"
            )
        return agent

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kwargs": self.kwargs, "command": self.command, "privileged": self.privileged}
