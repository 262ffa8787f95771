"""The child's side of an isolated agent (`protocol.isolation`): ``python -m icrl_bench.protocol.agent_process``.

It reads the protocol's JSON lines on stdin, builds the agent from the specification in the first message, and
answers on stdout; the agent's own prints go to stderr. Nothing of the runner (env, task, suite) exists here:
tasks cross the pipe only for agents that declare themselves privileged.
"""

from __future__ import annotations

import json
import operator
import os
import signal
import sys
import traceback
from typing import Any, Sequence

from icrl_bench.envs.task import TaskSpec, Transition
from icrl_bench.protocol.agent import TrialInfo, is_batched, raised_at


class _PerTrialCopies:
    """A single-trial agent presented batched: one instance per concurrent trial, built from the specification."""

    def __init__(self, spec: Any, first: Any) -> None:
        self.spec, self.instances = spec, [first]

    def begin_trials(self, infos: Sequence[TrialInfo]) -> None:
        while len(self.instances) < len(infos):
            self.instances.append(self.spec.build())
        for agent, info in zip(self.instances, infos):
            agent.begin_trial(info)

    def act_batch(self, obs: Sequence[int], trials: Sequence[int]) -> list[Any]:
        return [self.instances[j].act(o) for o, j in zip(obs, trials)]

    def observe_batch(self, transitions: Sequence[Transition], trials: Sequence[int], demonstration: bool = False) -> None:
        for t, j in zip(transitions, trials):
            self.instances[j].observe(t, demonstration)

    def reveal(self, task: TaskSpec, trial: int) -> None:
        self.instances[trial].reveal(task)

    def close(self) -> None:
        for agent in self.instances:
            close = getattr(agent, "close", None)
            if callable(close):
                close()


def _plain(action: Any) -> Any:
    """An action as JSON carries it: integers (numpy's too) as such, anything else as the runner will reject it."""
    if action is None or isinstance(action, (bool, str, float)):
        return action
    try:
        return operator.index(action)
    except TypeError:
        return repr(action)


def _error(e: BaseException, during: str) -> dict[str, str]:
    return {"error": f"the agent raised {type(e).__name__} in {during}: {e}{raised_at(e)}",
            "traceback": "".join(traceback.format_exception(type(e), e, e.__traceback__))}  # fmt: skip


def serve(inp: Any, out: Any) -> None:
    """The child's loop: build the agent named by the first message, then answer the runner's calls."""
    from icrl_bench.agents import AgentSpec

    def answer(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        out.flush()

    agent: Any = None
    pending: dict[str, str] | None = None  # the first error of an unanswered call
    for line in inp:
        message = json.loads(line)
        op = message["op"]
        if op == "close":
            break
        try:
            if op == "probe":  # only the declared privilege: nothing is built
                answer({"ok": True, "privileged": bool(AgentSpec(**message["spec"]).privileged)})
                break
            if op == "build":
                spec = AgentSpec(**message["spec"])
                built = spec.build()
                copyable = True
                if is_batched(built):
                    agent = built
                else:
                    second = spec.build()
                    copyable = second is not built
                    agent = _PerTrialCopies(spec, built)
                    if copyable:
                        agent.instances.append(second)
                answer({"ok": True, "privileged": bool(spec.privileged), "copyable": copyable})
            elif pending is not None:
                if op == "act":
                    answer(pending)
                continue
            elif op == "begin":
                agent.begin_trials([TrialInfo(*info) for info in message["infos"]])
            elif op == "observe":
                transitions = [Transition(int(o), int(a), float(r), int(n), bool(te), bool(tr))
                               for o, a, r, n, te, tr in message["transitions"]]  # fmt: skip
                agent.observe_batch(transitions, message["trials"], message["demonstration"])
            elif op == "reveal":
                agent.reveal(TaskSpec.from_dict(message["task"]), message["trial"])
            elif op == "act":
                actions = agent.act_batch(message["obs"], message["trials"])
                try:
                    listed = [_plain(a) for a in actions]
                except TypeError:
                    raise TypeError(f"act_batch returned {actions!r}; expected a sequence of actions") from None
                answer({"actions": listed})
        except BaseException as e:  # noqa: BLE001 - everything the agent does wrong goes back to the runner
            if isinstance(e, SystemExit):
                e = RuntimeError(f"the agent called exit({e.code})")
            error = _error(e, {"build": "building the agent", "begin": "begin_trials", "observe": "observe_batch",
                               "act": "act_batch", "reveal": "reveal"}.get(op, op))  # fmt: skip
            if op in ("build", "probe", "act"):  # answered calls: the parent is waiting for this line
                answer(error)
            else:
                pending = error
    if agent is not None and callable(getattr(agent, "close", None)):
        agent.close()


def main() -> None:
    """Entry point of the child: ``python -m icrl_bench.protocol.agent_process``, the protocol on stdin and stdout.

    The agent's own prints go to stderr (its stdout is redirected there), so they can never corrupt the protocol.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes the pipe
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    with os.fdopen(os.dup(0), "rb") as inp, protocol_out:
        os.close(0)
        try:
            serve(inp, protocol_out)
        except BrokenPipeError:
            pass


if __name__ == "__main__":
    main()
