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
import os
import select
import shlex
import signal
import subprocess
from typing import Any

from icrl_bench.envs.task import Transition
from icrl_bench.protocol.agent import Agent, TrialInfo
from icrl_bench.protocol.isolation import die_with_parent


class ExternalAgentError(RuntimeError):
    """The external agent process broke the protocol or died."""


class ExternalAgent(Agent):
    """Speaks the JSON-lines protocol of the module docstring to the process started by `command`.

    Out-of-step output is an error: before each ``act`` the agent must have written nothing unasked. Every call
    runs under the runner's per-step time limit, so a process that hangs or stops reading is cut off.
    """

    def __init__(self, command: str) -> None:
        self.command = command
        try:
            # Unbuffered binary pipes: select() then sees exactly what the process wrote. A session of its own, so
            # that `close` can end everything it started; it dies with this process (parent-death signal).
            self.proc = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                                         start_new_session=True, preexec_fn=die_with_parent)  # fmt: skip
        except OSError as e:
            raise ExternalAgentError(f"could not start the agent command {command!r}: {e}") from e
        self._buffer = b""

    def _send(self, message: dict[str, Any]) -> None:
        if self.proc.poll() is not None:
            raise ExternalAgentError(f"the agent process {self.command!r} exited with code {self.proc.returncode}")
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())  # type: ignore[union-attr]
        except BrokenPipeError as e:
            raise ExternalAgentError(f"the agent process {self.command!r} closed its input") from e

    def _readline(self) -> bytes:
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while b"\n" not in self._buffer:
            chunk = os.read(fd, 65536)
            if not chunk:  # end of output
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def _unasked_output(self) -> bool:
        return bool(self._buffer) or bool(select.select([self.proc.stdout], [], [], 0)[0])

    def begin_trial(self, info: TrialInfo) -> None:
        self._send({"type": "begin_trial", "info": info.to_dict()})

    def observe(self, transition: Transition, demonstration: bool = False) -> None:
        self._send({"type": "observe", "transition": transition._asdict(), "demonstration": demonstration})

    def act(self, obs: int) -> int:
        if self._unasked_output():
            unasked = self._readline()
            if not unasked:
                raise ExternalAgentError(f"the agent process {self.command!r} closed its output (exited?)")
            raise ExternalAgentError(
                f"the agent process wrote {unasked.decode(errors='replace').strip()!r} without being asked: it must "
                "answer each 'act' with exactly one line and write nothing else to stdout (use stderr for logs)"
            )
        self._send({"type": "act", "obs": int(obs)})
        line = self._readline()
        if not line:
            code = self.proc.wait(timeout=5)
            raise ExternalAgentError(f"the agent process {self.command!r} exited (code {code}) instead of answering 'act'")
        try:
            return json.loads(line)["action"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
            raise ExternalAgentError(
                f"the agent process answered {line.decode(errors='replace').strip()!r} to 'act'; expected a line like "
                '{"action": 2}'
            ) from None

    def close(self) -> None:
        """Say goodbye without ever blocking (the process may have stopped reading), then make sure it ends."""
        if self.proc.poll() is None:
            try:
                os.set_blocking(self.proc.stdin.fileno(), False)  # type: ignore[union-attr]
                self.proc.stdin.write(b'{"type": "close"}\n')  # type: ignore[union-attr]
            except OSError:
                pass  # pipe full or closed: the kill below ends it anyway
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)  # the process and whatever it started
                except (ProcessLookupError, PermissionError):
                    self.proc.kill()
                self.proc.wait()

    def __del__(self) -> None:
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
