"""`ExternalAgent`: an agent in another process (any language, or a bridge to an API), over JSON lines.

The runner starts the command once and writes one JSON object per line to its stdin; the agent answers
only ``act`` requests, with one JSON object per line on its stdout. Its stderr is passed through.

    {"type": "begin_trial", "info": {"n_actions": 4, "n_observations": 25, "n_episodes": 30,
                                      "max_steps": 100, "seed": 123}}
    {"type": "observe", "transition": {"obs": 8, "action": 2, "reward": 0.0, "next_obs": 9,
                                        "terminated": false, "truncated": false}, "demonstration": false}
    {"type": "act", "obs": 9}          ->  the agent answers  {"action": 2}
    {"type": "close"}                  (then stdin closes; the agent should exit)

`examples/random_agent.py` is a complete agent in 20 lines.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from typing import Any

from icrl_bench.envs.task import Transition
from icrl_bench.protocol.agent import Agent, TrialInfo


class ExternalAgentError(RuntimeError):
    """The external agent process broke the protocol or died."""


class ExternalAgent(Agent):
    """Speaks the JSON-lines protocol of the module docstring to the process started by `command`."""

    def __init__(self, command: str) -> None:
        self.command = command
        try:
            self.proc = subprocess.Popen(
                shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
            )
        except OSError as e:
            raise ExternalAgentError(f"could not start the agent command {command!r}: {e}") from e

    def _send(self, message: dict[str, Any]) -> None:
        if self.proc.poll() is not None:
            raise ExternalAgentError(f"the agent process {self.command!r} exited with code {self.proc.returncode}")
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except BrokenPipeError as e:
            raise ExternalAgentError(f"the agent process {self.command!r} closed its input") from e

    def begin_trial(self, info: TrialInfo) -> None:
        self._send({"type": "begin_trial", "info": info.to_dict()})

    def observe(self, transition: Transition, demonstration: bool = False) -> None:
        self._send({"type": "observe", "transition": transition._asdict(), "demonstration": demonstration})

    def act(self, obs: int) -> int:
        self._send({"type": "act", "obs": int(obs)})
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            code = self.proc.wait(timeout=5)
            raise ExternalAgentError(f"the agent process {self.command!r} exited (code {code}) instead of answering 'act'")
        try:
            reply = json.loads(line)
            return reply["action"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ExternalAgentError(
                f"the agent process answered {line.strip()!r} to 'act'; expected a line like {{\"action\": 2}}"
            ) from None

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._send({"type": "close"})
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=5)
            except (ExternalAgentError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()

    def __del__(self) -> None:
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
