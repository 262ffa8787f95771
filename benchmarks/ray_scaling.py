"""The Ray backend against the local process pool, same worker count, same run (`icrl-bench evaluate`).

    python benchmarks/ray_scaling.py [--workers 2] [--trials 100] [--agents explorer,icrl-distill-small] [--two-nodes]

For each agent: wall time of a whole evaluation of the default suite set with ``--workers W`` (local pool) and
with ``--backend ray --workers W`` on a Ray instance that is already running (its start-up, a few seconds once per
cluster, is printed apart), the ratio ray/local (target <= 1.20); the same through the Python API in one process
that connected to Ray once (a command pays Ray's connection, seconds, every time); and the per-trial scheduling cost: the Ray
backend's time on a no-op agent (``random``) over the trials, minus the local pool's. Both runs must write the
same episodes.csv (checked). ``--two-nodes`` starts a head and a second raylet on this machine (``ray start``,
127.0.0.1 only, 1 CPU each) and evaluates through ``--address``: a real two-node run, then stops both.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Loopback only (see icrl_bench.protocol.ray_backend.connect); clusters started by `ray start` (Ray >= 2.5x) ask
# every client for the token in ~/.ray/auth_token, which clients send only with RAY_AUTH_MODE=token.
from icrl_bench.protocol.suites import DEFAULT_SUITES as SUITES  # noqa: E402

LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}


def evaluate(agent: str, out: Path, workers: int, trials: int, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "icrl_bench.cli", "evaluate", agent, "--out", str(out), "--workers", str(workers),
           "--trials", str(trials), "--no-progress", *extra]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=os.environ | LOOPBACK)
    return time.perf_counter() - start


def in_process(agent: str, tmp: Path, workers: int, trials: int, address: str) -> tuple[float, float]:
    """Wall time of the evaluation API with the local pool and with Ray (this driver already connected)."""
    os.environ.update(LOOPBACK)
    from icrl_bench.agents import AgentSpec
    from icrl_bench.protocol import evaluate as run
    from icrl_bench.protocol.ray_backend import RayBackend, connect

    backend = RayBackend(address)
    connect(backend)
    times = []
    for ray in (None, backend):
        start = time.perf_counter()
        run(AgentSpec(agent), SUITES, tmp / f"{agent}-{'ray' if ray else 'local'}-api", trials, workers=workers,
            progress=False, in_process=False, ray=ray)  # fmt: skip
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def ray_start(*args: str) -> None:
    subprocess.run(["ray", "start", "--node-ip-address=127.0.0.1", "--disable-usage-stats", *args], check=True,
                   stdout=subprocess.DEVNULL, env=os.environ | LOOPBACK)  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--agents", default="explorer,icrl-distill-small")
    p.add_argument("--two-nodes", action="store_true")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    port = "6391"
    try:
        if not (Path.home() / ".ray" / "auth_token").exists():
            subprocess.run(["ray", "get-auth-token", "--generate"], check=True, capture_output=True, env=os.environ | LOOPBACK)
        start = time.perf_counter()
        ray_start("--head", f"--port={port}", "--include-dashboard=false", f"--num-cpus={1 if args.two_nodes else args.workers}")
        if args.two_nodes:
            ray_start(f"--address=127.0.0.1:{port}", "--num-cpus=1")
        print(f"ray start ({2 if args.two_nodes else 1} node(s)): {time.perf_counter() - start:.1f} s (once per cluster)")
        on_ray = ["--backend", "ray", "--address", f"127.0.0.1:{port}"]
        for agent in ["random", *args.agents.split(",")]:
            local = evaluate(agent, tmp / f"{agent}-local", args.workers, args.trials, [])
            ray = evaluate(agent, tmp / f"{agent}-ray", args.workers, args.trials, on_ray)
            same = (tmp / f"{agent}-local" / "episodes.csv").read_bytes() == (tmp / f"{agent}-ray" / "episodes.csv").read_bytes()
            n = 9 * args.trials
            print(f"{agent:20s} local {local:6.1f} s ({n / local:6.1f} trials/s)   ray {ray:6.1f} s ({n / ray:6.1f} trials/s)"
                  f"   ray/local {ray / local:.2f} (target <= 1.20)   same episodes.csv: {same}")
            if agent != "random":  # the same, in this process, connected once: without Ray's per-command start
                warm_local, warm_ray = in_process(agent, tmp, args.workers, args.trials, f"127.0.0.1:{port}")
                print(f"{'':20s} connected once: local {warm_local:6.1f} s   ray {warm_ray:6.1f} s   "
                      f"ray/local {warm_ray / warm_local:.2f}")
            if agent == "random":
                print(f"{'':20s} scheduling cost per trial (ray - local, no-op agent): {(ray - local) / n * 1e3:.1f} ms")
            if not same:
                raise SystemExit("the backends disagree")
    finally:
        subprocess.run(["ray", "stop", "--force"], check=False, capture_output=True, env=os.environ | LOOPBACK)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
