"""Playing trials on a Ray cluster (``--backend ray``): the same trials, seeds and records as the local pool.

`play_on_ray` starts `workers` Ray actors; each builds the agent once (on its own GPU share with
``gpus_per_worker``) and plays chunks of (suite, trials) that the driver hands out as actors become free. An
actor returns a chunk's records only when the whole chunk is played, and the driver writes them (the part file of
`evaluate`, memory for `verify`) - so a worker process that dies mid-chunk (killed, out of memory, a lost node)
loses nothing and duplicates nothing: Ray restarts the actor (it builds its agent again) and replays the chunk,
up to `RayBackend.max_retries` times; after that the error names the chunk. An error raised by the agent itself
is not retried (it would fail again): it is raised as on the local backend.

``ray`` is an optional extra (``pip install -e ".[ray]"``), imported only here. With no ``address`` a local Ray
instance is started on 127.0.0.1 (dashboard off); ``address`` joins a running cluster (``ray start --head
--node-ip-address=...`` on the head, ``ray start --address=HEAD:6379`` on the others; the README has the commands).
Trials are independent (own seeds), so a backend, a worker count or a retry never changes a record (except
its wall time); ``--resume`` works across backends, since both write the same part files.

Trust: the driver sends the actors what the local workers get (the agent's recipe, the evaluation seed, the
protocol's options); under ``verify`` that includes the secret evaluation seed, and the agent runs isolated in a
child of the actor exactly as in a local worker. Verify only on a cluster that runs no one else's code.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable, Sequence

from icrl_bench.protocol.records import TrialRecord
from icrl_bench.protocol.runner import AgentError, ProtocolOptions
from icrl_bench.protocol.suites import Suite
from icrl_bench.protocol.workers import Job, close_agent, play

BACKENDS = ("local", "ray")


@dataclasses.dataclass(frozen=True)
class RayBackend:
    """Where and how trials are played on Ray (the CLI's ``--address``, ``--cpus-per-worker``,
    ``--gpus-per-worker``); ``chunks_per_worker``: how many chunks each worker's share of a suite is cut into
    (default 1: the local pool's chunks, so a batched agent plays as large batches; more: finer progress, better
    balance and less replayed after a failure, smaller batches)."""

    address: str | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    max_retries: int = 3
    chunks_per_worker: int = 1

    def __post_init__(self) -> None:
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise ValueError(f"--cpus-per-worker must be above 0 and --gpus-per-worker at least 0 (got "
                             f"{self.cpus_per_worker} and {self.gpus_per_worker})")  # fmt: skip
        if self.max_retries < 0 or self.chunks_per_worker < 1:
            raise ValueError("max_retries must be at least 0 and chunks_per_worker at least 1")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError('--backend ray needs Ray: pip install -e ".[ray]" (or pip install "ray[default]")') from None
    return ray


LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's node address stays 127.0.0.1 (see `connect`)


def connect(backend: RayBackend) -> Any:
    """Ray, initialised: joined to `backend.address`, or a local instance bound to 127.0.0.1 (dashboard off).

    A local instance binds every Ray process (GCS, raylet, agents, workers) to 127.0.0.1 only: ``ray.init``
    otherwise replaces ``_node_ip_address="127.0.0.1"`` by the machine's own address (its single-node mode for
    macOS and Windows keeps loopback, and ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` selects that mode on Linux; the
    processes Ray starts inherit the variable). Nodes started by hand take ``ray start --node-ip-address=...``.
    """
    if backend.address is None:
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    ray = import_ray()
    if not ray.is_initialized():
        if backend.address is None:
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = os.environ[LOOPBACK_ONLY] not in ("0", "false", "False")
            ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                     configure_logging=False)  # fmt: skip
        else:
            ray.init(address=backend.address, log_to_driver=False, configure_logging=False)
    return ray


def ray_chunks(jobs: Sequence[Job], workers: int, chunks_per_worker: int, batch: int = 1) -> list[Job]:
    """Each suite's trials cut into about ``workers * chunks_per_worker`` chunks, none smaller than `batch`
    (a batched agent plays a chunk's trials together) unless the suite has fewer trials."""
    out: list[Job] = []
    for suite, trials in jobs:
        size = max(batch, math.ceil(len(trials) / (workers * chunks_per_worker)), 1)
        out += [(suite, trials[i : i + size]) for i in range(0, len(trials), size)]
    return out


class Player:
    """A Ray actor's state: one agent, built once, playing the chunks it is handed (records as dicts)."""

    def __init__(self, recipe: Any, seed: int, options: ProtocolOptions, suite_of: Callable[[str], Suite],
                 threads: int, before: Callable[[], None] | None = None) -> None:  # fmt: skip
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:
            pass
        if before is not None:
            before()
        self.seed, self.options, self.suite_of = seed, options, suite_of
        self.privileged = bool(recipe.privileged)
        self.agent = recipe.build()

    def play(self, job: Job) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        play(self.agent, self.privileged, [job], self.suite_of, self.seed, self.options,
             lambda record: records.append(record.to_dict()))  # fmt: skip
        return records

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        close_agent(self.agent)


def play_on_ray(recipe: Any, jobs: Sequence[Job], seed: int, options: ProtocolOptions,
                suite_of: Callable[[str], Suite], workers: int, backend: RayBackend,
                sink: Callable[[TrialRecord], None], on_trial: Callable[[], None] | None = None,
                before: Callable[[], None] | None = None, batch: int = 1) -> None:  # fmt: skip
    """Play `jobs` on `workers` Ray actors, handing every finished trial to `sink` (in this process) once."""
    ray = connect(backend)
    from ray.exceptions import RayActorError, RayTaskError

    actor = ray.remote(Player).options(num_cpus=backend.cpus_per_worker, num_gpus=backend.gpus_per_worker,
                                       max_restarts=backend.max_retries, max_task_retries=backend.max_retries)  # fmt: skip
    threads = max(1, int(backend.cpus_per_worker))
    chunks = ray_chunks(jobs, workers, backend.chunks_per_worker, batch)
    actors = [actor.remote(recipe, seed, options, suite_of, threads, before) for _ in range(min(workers, len(chunks)))]
    pending: dict[Any, tuple[int, Job]] = {}
    todo = list(reversed(chunks))
    try:
        for index, a in enumerate(actors):  # one chunk each to begin with, the next as each one finishes
            if todo:
                job = todo.pop()
                pending[a.play.remote(job)] = (index, job)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            index, job = pending.pop(ready[0])
            try:
                records = ray.get(ready[0])
            except RayTaskError as e:  # the agent's own error: raised as the local backend raises it
                cause = e.as_instanceof_cause()
                raise getattr(cause, "cause", None) or cause from None
            except RayActorError as e:
                raise AgentError(f"suite {job[0]!r}, trials {job[1][0]}-{job[1][-1]}: the worker playing them died "
                                 f"{backend.max_retries + 1} time(s) ({e.__class__.__name__}); nothing of that chunk "
                                 "was written: run again with --resume") from None  # fmt: skip
            for record in records:
                sink(TrialRecord.from_dict(record))
                if on_trial is not None:
                    on_trial()
            if todo:
                job = todo.pop()
                pending[actors[index].play.remote(job)] = (index, job)
    finally:
        for a in actors:
            try:
                ray.get(a.close.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - a dead actor has nothing left to close
                pass
            ray.kill(a)
