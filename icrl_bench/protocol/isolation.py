"""Isolated agents: the agent runs in a child process that receives exactly what the protocol gives.

The runner's process holds the task (the hidden map), the suite and - under leaderboard verification - the
verifier's key. Agent code must never run there: it could read the map from a stack frame or from
``gc.get_objects()``. `IsolatedSpec` wraps an agent specification; its agents are proxies that forward every call
of the batched interface over a pipe to a fresh interpreter (``python -m icrl_bench.protocol.agent_process``, the
child's side), which builds the agent itself, from the specification alone. What crosses its stdin and stdout, as
JSON lines:

    parent -> child   {"op": "build", "spec": {"name": ..., "kwargs": {...}, "command": ...}}   (answered)
                      {"op": "begin", "infos": [[n_actions, n_observations, n_episodes, max_steps, seed], ...]}
                      {"op": "observe", "transitions": [[obs, action, reward, next_obs, terminated, truncated], ...],
                       "trials": [...], "demonstration": false}
                      {"op": "act", "obs": [...], "trials": [...]}                                (answered)
                      {"op": "reveal", "task": {...}, "trial": j}     (declared privileged agents only)
                      {"op": "probe", "spec": {...}}   (answered with the declared privilege only; nothing is built)
    child -> parent   {"ok": true, ...} | {"actions": [...]} | {"error": "...", "traceback": "..."}

Only ``build`` and ``act`` are answered, so a step of a whole batch costs one round trip; an error in a call
that is not answered is reported with the next answer. The parent parses only JSON from the child (never
pickle: the child is untrusted). The child's environment is the parent's without any ``ICRL_BENCH_*`` variable; it
runs in a session of its own; the agent's own prints go to the parent's stderr.

A single-trial agent is presented batched inside the child, one instance per concurrent trial (each built from
the specification and reset by ``begin_trial``), so that isolation keeps one round trip per batch; an agent
specification that names a ready *instance* cannot be copied and is played one trial at a time.

The child runs in a sandbox (`protocol.sandbox`, bubblewrap by default): read-only filesystem, no view of other
processes, no network, and as root an unprivileged uid. Without one (``Sandbox("none")``) it runs as the same OS
user, so it could read and write every file that user can and, with ptrace rights (root, or a lax
``kernel.yama.ptrace_scope``), other processes' memory. Either way it can read the installed package, from which
the public suites' maps can be regenerated: only verification's fresh maps are secret.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from typing import Any, Sequence

from icrl_bench.envs.task import TaskSpec, Transition
from icrl_bench.protocol.agent import TrialInfo
from icrl_bench.protocol.sandbox import Sandbox, choose_sandbox

SCRUBBED_PREFIX = "ICRL_BENCH_"
MAX_REPLY_BYTES = 1 << 20  # an answer is a few bytes per trial; a child cannot make the parent buffer more
BUILD_TIMEOUT = 600.0  # seconds an agent may take to be built (or to declare its privilege): loading a model


class AgentProcessError(RuntimeError):
    """The isolated agent failed: it raised (the child's traceback is attached), answered wrongly, or died."""

    def __init__(self, message: str, traceback_text: str = "") -> None:
        super().__init__(message)
        self.traceback_text = traceback_text


def child_environment() -> dict[str, str]:
    """The parent's environment without ``ICRL_BENCH_*`` variables (the verifier's key is one)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIX)}


def forbid_inspection() -> None:
    """Linux: make this process non-dumpable, so that other processes of the same (non-root) user can neither
    ptrace it nor read its ``/proc/<pid>/environ`` or ``mem``. Root is not stopped by this (use a container)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_DUMPABLE = 4
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def die_with_parent() -> None:
    """In a child, before it runs: Linux sends it SIGKILL when the process that started it dies, however that one
    dies (a killed verifier's agent used to play on for 20-40 s). Elsewhere nothing."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def describe_exit(code: int | None) -> str:
    """How a process ended, in words: 'exited with status 3', 'was killed by SIGSEGV (a segmentation fault)'."""
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = {"SIGSEGV": " (a segmentation fault)", "SIGKILL": " (killed: out of memory?)", "SIGABRT": " (aborted)"}
        return f"was killed by {name}{hint.get(name, '')}"
    return f"exited with status {code}"


class _Connection:
    """The parent's end: a child process speaking the protocol on its stdin and stdout."""

    def __init__(self, spec: dict[str, Any], sandbox: Sandbox, op: str = "build", timeout: float | None = None) -> None:
        command = sandbox.wrap([sys.executable, "-m", "icrl_bench.protocol.agent_process"], agent_folders(spec))
        try:
            # A session of its own: the user's Ctrl-C reaches the runner only (which closes the pipe), and the
            # agent cannot signal the runner's process group. It dies with this process (parent-death signal).
            self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         env=child_environment(), close_fds=True, start_new_session=True,
                                         preexec_fn=die_with_parent)  # fmt: skip
        except OSError as e:
            raise AgentProcessError(f"could not start the isolated agent process {command}: {e}") from None
        self.out = self.proc.stdin  # type: ignore[assignment]
        self.inp = self.proc.stdout  # type: ignore[assignment]
        self.reply = self.request({"op": op, "spec": spec}, BUILD_TIMEOUT if timeout is None else timeout)

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        except (BrokenPipeError, ValueError):
            self._died()

    def request(self, message: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send `message` and read the answer; with `timeout`, a child that has not answered within it is killed
        (with everything it started) and the call fails: a limit that holds whatever the agent does inside."""
        self.send(message)
        try:
            self.out.flush()
        except BrokenPipeError:
            self._died()
        if timeout is not None:
            ready, _, _ = select.select([self.inp], [], [], timeout)
            if not ready:
                self.kill()
                raise AgentProcessError(f"the agent did not answer {message.get('op')!r} within {timeout:g} s and was "
                                        "stopped")  # fmt: skip
        line = self.inp.readline(MAX_REPLY_BYTES)
        if not line:
            self._died()
        if not line.endswith(b"\n"):
            raise AgentProcessError(f"the agent process answered a line of over {MAX_REPLY_BYTES:,} bytes")
        try:
            reply = json.loads(line)
            if not isinstance(reply, dict):
                raise ValueError
        except (ValueError, RecursionError):
            raise AgentProcessError(f"the agent process answered {line[:200]!r}, which is not the protocol") from None
        if "error" in reply:
            raise AgentProcessError(str(reply["error"]), str(reply.get("traceback", "")))
        return reply

    def _died(self) -> None:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        raise AgentProcessError(f"the agent's process {describe_exit(code)}")

    def kill(self) -> None:
        """Kill the child and every process in its session (it started one of its own)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"op": "close"})
                self.out.close()
            except (OSError, AgentProcessError):
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.out, self.inp):
            try:
                f.close()
            except OSError:
                pass


class IsolatedAgent:
    """The parent's proxy of an agent in a child process: the batched interface, one round trip per step."""

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.privileged = bool(connection.reply.get("privileged"))

    def begin_trials(self, infos: Sequence[TrialInfo]) -> None:
        self.connection.send({"op": "begin", "infos": [[i.n_actions, i.n_observations, i.n_episodes, i.max_steps, i.seed]
                                                        for i in infos]})  # fmt: skip

    def act_batch(self, obs: Sequence[int], trials: Sequence[int]) -> list[Any]:
        reply = self.connection.request({"op": "act", "obs": [int(o) for o in obs], "trials": list(trials)})
        actions = reply.get("actions")
        if not isinstance(actions, list):
            raise AgentProcessError(f"the agent process answered {str(reply)[:200]} to 'act'")
        return actions

    def observe_batch(self, transitions: Sequence[Transition], trials: Sequence[int], demonstration: bool = False) -> None:
        self.connection.send({"op": "observe", "transitions": [list(t) for t in transitions], "trials": list(trials),
                              "demonstration": demonstration})  # fmt: skip

    def reveal(self, task: TaskSpec, trial: int) -> None:
        self.connection.send({"op": "reveal", "task": task.to_dict(), "trial": trial})

    def close(self) -> None:
        self.connection.close()


class IsolatedSingleAgent:
    """The proxy of an agent given as a ready instance: it cannot be copied per trial, so it plays one trial at a
    time through the single-trial interface (still one round trip per step)."""

    def __init__(self, connection: _Connection) -> None:
        self.batched = IsolatedAgent(connection)
        self.privileged = self.batched.privileged

    def begin_trial(self, info: TrialInfo) -> None:
        self.batched.begin_trials([info])

    def act(self, obs: int) -> Any:
        return self.batched.act_batch([obs], [0])[0]

    def observe(self, transition: Transition, demonstration: bool = False) -> None:
        self.batched.observe_batch([transition], [0], demonstration)

    def reveal(self, task: TaskSpec) -> None:
        self.batched.reveal(task, 0)

    def close(self) -> None:
        self.batched.close()


def agent_folders(spec: dict[str, Any]) -> list[str]:
    """The folder of an agent given as ``path/file.py:attr``: the sandbox shows it (read-only) to the child."""
    name = str(spec.get("name") or "")
    path = name.rpartition(":")[0] if ".py:" in name else ""
    return [os.path.dirname(os.path.abspath(path))] if path and os.path.isfile(path) else []


def isolated_agent(spec: dict[str, Any], sandbox: Sandbox) -> IsolatedAgent | IsolatedSingleAgent:
    """A proxy for the agent `spec` (``{"name", "kwargs", "command"}`` as in `AgentSpec`) in its own child process,
    confined by `sandbox`."""
    connection = _Connection(spec, sandbox)
    return IsolatedAgent(connection) if connection.reply.get("copyable", True) else IsolatedSingleAgent(connection)


class IsolatedSpec:
    """An agent specification whose agents run isolated (`evaluate --isolate`, always under `verify`).

    Nothing of the agent's code runs in this process: even its declared privilege is asked of a child.
    `sandbox` (`protocol.sandbox`): how the child is confined; default bubblewrap, and a `SandboxError` where it
    cannot start (pass ``Sandbox("none")`` explicitly for a plain child process, or a ``prefix`` sandbox for a
    container runtime: the child then runs ``python -m icrl_bench.protocol.agent_process`` inside it).
    """

    def __init__(self, spec: Any, sandbox: Sandbox | None = None) -> None:
        self.spec = spec
        self.sandbox = choose_sandbox() if sandbox is None else sandbox
        self._privileged: bool | None = None

    @property
    def label(self) -> str:
        return self.spec.label

    def _spec_dict(self) -> dict[str, Any]:
        return {"name": self.spec.name, "kwargs": self.spec.kwargs, "command": self.spec.command}

    @property
    def privileged(self) -> bool:
        if self._privileged is None:
            probe = _Connection(self._spec_dict(), self.sandbox, op="probe")
            self._privileged = bool(probe.reply.get("privileged"))
            probe.close()
        return self._privileged

    def build(self) -> IsolatedAgent | IsolatedSingleAgent:
        return isolated_agent(self._spec_dict(), self.sandbox)

    def to_dict(self) -> dict[str, Any]:
        return {**self._spec_dict(), "privileged": self.privileged}
