"""Playing trials, in this process or in worker processes that report every trial.

`play` runs (suite, trials) jobs with one agent and hands each finished trial to a sink: `part_file` appends it to
a results folder's part file (flushed and fsynced; `evaluate`), a list keeps it in memory (`verify`).
`play_in_workers` hands chunks of trials (`split_jobs`) to worker processes (spawned: each builds its own agent
once) and follows them through a pipe each: which chunk each worker plays and which trials it finished.
So when a worker dies - the agent called ``os._exit``, crashed the interpreter, or was killed for memory - the
error names the exit status, the suite and the trial it was playing (the episode only an isolated agent can
tell, `protocol.isolation`), and finished trials are on disk for ``--resume``.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import sys
import time
import pickle
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from icrl_bench.protocol.agent import is_batched
from icrl_bench.protocol.isolation import describe_exit
from icrl_bench.protocol.records import TrialRecord
from icrl_bench.protocol.runner import AgentError, ProtocolOptions, run_trials
from icrl_bench.protocol.suites import Suite

Job = tuple[str, list[int]]  # a suite name and trial indices


def play(
    agent: Any,
    privileged: bool,
    jobs: Sequence[Job],
    suite_of: Callable[[str], Suite],
    seed: int,
    options: ProtocolOptions,
    sink: Callable[[TrialRecord], None],
    on_start: Callable[[str, list[int]], None] | None = None,
    on_trial: Callable[[str, int], None] | None = None,
    on_first_step: Callable[[str, float, int], None] | None = None,
) -> None:
    """Play the jobs with `agent`, handing each finished trial to `sink` as it finishes. `on_first_step(suite,
    seconds, trials)`: the time from a job's start to the end of its first batch step (agent set-up included)."""
    for suite_name, trials in jobs:
        if on_start is not None:
            on_start(suite_name, trials)
        started, first = time.perf_counter(), [on_first_step]

        def stepped(n: int) -> None:
            if first[0] is not None:
                first[0](suite_name, time.perf_counter() - started, n)
                first[0] = None

        for record in run_trials(agent, suite_of(suite_name), trials, seed, options, privileged=privileged,
                                 on_step=stepped if on_first_step is not None else None):  # fmt: skip
            sink(record)
            if on_trial is not None:
                on_trial(suite_name, record.trial)


@contextlib.contextmanager
def part_file(path: Path) -> Iterator[Callable[[TrialRecord], None]]:
    """A sink appending each record to `path` as one JSON line, flushed and fsynced: a crash loses no finished trial."""
    with open(path, "a") as f:

        def write(record: TrialRecord) -> None:
            f.write(json.dumps(record.to_dict()) + "\n")
            f.flush()
            os.fsync(f.fileno())

        yield write


def split_jobs(jobs: Sequence[Job], workers: int) -> list[Job]:
    """Each suite's trials cut into at most `workers` chunks of nearly equal size, for that many processes."""
    return [(s, ks[i : i + size]) for s, ks in jobs for size in [max(1, math.ceil(len(ks) / workers))]
            for i in range(0, len(ks), size)]  # fmt: skip


def close_agent(agent: Any) -> None:
    """Call the agent's ``close()`` if it has one."""
    close = getattr(agent, "close", None)
    if callable(close):
        close()


def _portable(e: BaseException) -> BaseException:
    """`e` if it survives pickling (to reach the parent), else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001 - any exception type may refuse to pickle
        return RuntimeError(f"{type(e).__name__}: {e}")


def _die_with_parent() -> None:
    """A worker ends when the parent process dies, however it dies (Linux; daemon processes are only ended by
    the parent's orderly exit, so a killed `evaluate` used to leave its workers playing on)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request
        os._exit(1)


def _worker(index: int, recipe: Any, jobs: Any, events: Any, seed: int, options: ProtocolOptions, parts: str,
            suite_of: Callable[[str], Suite], threads: str, token: str) -> None:  # fmt: skip
    """A worker process: build the agent once, play chunks from `jobs` until None, report on its `events` pipe
    (synchronous sends: what was reported before the process died has reached the parent)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # split the cores among the workers (torch's pool)
        os.environ.setdefault(var, threads)
    _die_with_parent()
    agent = None
    try:
        agent = recipe.build()
        size = options.batch_size if is_batched(agent) else 1  # trials played at once
        with part_file(Path(parts) / f"trials-{os.getpid()}-{token}.jsonl") as sink:
            while (job := jobs.get()) is not None:
                play(agent, bool(recipe.privileged), [job], suite_of, seed, options, sink,
                     on_start=lambda s, ks: events.send(("start", s, ks, size)),
                     on_trial=lambda s, k: events.send(("trial", s, k)),
                     on_first_step=lambda s, t, n: events.send(("first_step", s, t, n)))  # fmt: skip
        events.send(("done",))
    except KeyboardInterrupt:
        pass  # the user's Ctrl-C: the parent stops the run and says so
    except BaseException as e:  # noqa: BLE001 - every failure goes to the parent, which names it
        events.send(("error", _portable(e)))
    finally:
        if agent is not None:
            try:
                close_agent(agent)
            except Exception:  # noqa: BLE001 - an error while closing must not hide the run's own error
                pass


def play_in_workers(recipe: Any, chunks: Sequence[Job], seed: int, options: ProtocolOptions, parts: str,
                    suite_of: Callable[[str], Suite], workers: int, token: str,
                    on_trial: Callable[[], None] | None = None,
                    on_first_step: Callable[[str, float, int], None] | None = None) -> None:  # fmt: skip
    """Play `chunks` in `workers` spawned processes; raise the first worker's error, or an `AgentError` naming the
    exit status, suite and trial of a worker that died."""
    ctx = multiprocessing.get_context("spawn")
    jobs = ctx.Queue()
    for chunk in chunks:
        jobs.put(chunk)
    for _ in range(workers):
        jobs.put(None)
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    pipes = [ctx.Pipe(duplex=False) for _ in range(workers)]  # (parent's end, worker's end)
    procs = [ctx.Process(target=_worker, args=(i, recipe, jobs, pipes[i][1], seed, options, parts, suite_of, threads,
                                               token), daemon=True) for i in range(workers)]  # fmt: skip
    playing: dict[int, tuple[str, list[int], list[int], int]] = {}  # worker -> (suite, trials, finished, batch)
    done: set[int] = set()

    def drain(index: int) -> None:
        end = pipes[index][0]
        while end.poll():
            try:
                event = end.recv()
            except EOFError:
                return
            if event[0] == "start":
                playing[index] = (event[1], event[2], [], event[3])
            elif event[0] == "trial":
                playing[index][2].append(event[2])
                if on_trial is not None:
                    on_trial()
            elif event[0] == "first_step":
                if on_first_step is not None:
                    on_first_step(*event[1:])
            elif event[0] == "done":
                done.add(index)
            else:
                raise event[1]

    try:
        for p in procs:
            p.start()
        for _, worker_end in pipes:
            worker_end.close()  # the workers hold theirs: end of file once a worker is gone
        while len(done) < workers:
            ready = multiprocessing.connection.wait([end for end, _ in pipes] + [p.sentinel for p in procs], timeout=1.0)
            for index in range(workers):
                drain(index)
            for index, p in enumerate(procs):
                if index not in done and (p.sentinel in ready or p.exitcode is not None):
                    p.join(timeout=5)
                    drain(index)
                    if index not in done:
                        raise AgentError(_death_message(p.exitcode, playing.get(index)))
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)
        jobs.cancel_join_thread()


def _death_message(code: int | None, state: tuple[str, list[int], list[int], int] | None) -> str:
    if state is None:
        return f"a worker process {describe_exit(code)} before it began a trial (while building the agent?)"
    suite, trials, finished, batch = state
    left = [k for k in trials if k not in finished]
    if not left:
        at = f"after trial {trials[-1]}"
    elif batch == 1 or len(left) == 1:  # trials are played in order, one at a time
        at = f"trial {left[0]}"
    else:
        at = f"one of trials {', '.join(map(str, left[:batch][:10]))}{' ...' if min(batch, len(left)) > 10 else ''} (played together)"
    return (f"suite {suite!r}, {at}: the agent's worker process {describe_exit(code)} "
            "(the episode is not known when a worker process itself dies; evaluate with --isolate to have it for an "
            "agent that crashes)")  # fmt: skip
