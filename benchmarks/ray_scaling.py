"""The Ray backend against the local process pool, same worker count, same run (`icrl-bench evaluate`).

    python benchmarks/ray_scaling.py [--workers 2] [--trials 100] [--agents explorer,icrl-distill-small] [--two-nodes]

For each agent: wall time of a whole evaluation of the default suite set with ``--workers W`` (local pool) and
with ``--backend ray --workers W`` on a Ray instance that is already running (its start-up, a few seconds once per
cluster, is printed apart), the ratio ray/local (target <= 1.20); the same through the Python API in one process
that connected to Ray once (a command pays Ray's connection, seconds, every time); and the per-trial scheduling cost: the Ray
backend's time on a no-op agent (``random``) over the trials, minus the local pool's. Both runs must write the
same episodes.csv (checked), and Ray's sockets must all be on 127.0.0.1 (checked with ``ss``). ``--two-nodes``
starts a head and a second raylet on this machine (127.0.0.1 only, 1 CPU each, so the two workers' actors run on
different nodes) and evaluates through ``--address``: a real two-node run, then stops both.
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


# A second node on this machine, loopback only. Ray's loopback mode (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: every
# process binds 127.0.0.1) makes `ray start --address` refuse to add a node; its cluster mode binds all
# interfaces and rewrites 127.0.0.1 to the machine's own address. So the second raylet is started by Ray's own
# `ray start` with only that refusal switched off: everything else stays in loopback mode (checked: `ss` lists
# only 127.0.0.1 sockets).
SECOND_NODE = """
import sys, types
import ray._private.ray_constants as constants
import ray.scripts.scripts as scripts
view = types.SimpleNamespace(**{k: getattr(constants, k) for k in dir(constants) if not k.startswith("__")})
view.ENABLE_RAY_CLUSTER = True  # what `ray start` checks before it adds a node; nothing else reads this copy
scripts.ray_constants = view
sys.argv = ["ray", "start", "--node-ip-address=127.0.0.1", "--disable-usage-stats", *sys.argv[1:]]
scripts.main()
"""


def second_node(address: str) -> None:
    subprocess.run([sys.executable, "-c", SECOND_NODE, f"--address={address}", "--num-cpus=1"], check=True,
                   stdout=subprocess.DEVNULL, env=os.environ | LOOPBACK)  # fmt: skip


def non_loopback_sockets() -> list[str]:
    """Ray's sockets (listening or connected) on any address but 127.0.0.1 (`ss`; empty: all loopback)."""
    out = subprocess.run(["ss", "-Htanp"], capture_output=True, text=True, check=True).stdout
    bad = []
    for line in out.splitlines():
        fields = line.split()
        if ("ray" in line or "gcs_server" in line) and len(fields) >= 5:
            ends = fields[3:4] if fields[0] == "LISTEN" else fields[3:5]  # a listener's peer is a wildcard
            hosts = {address.rsplit(":", 1)[0].strip("[]").removeprefix("::ffff:") for address in ends}
            if hosts != {"127.0.0.1"}:
                bad.append(line)
    return bad


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--agents", default="explorer,icrl-distill-small")
    p.add_argument("--two-nodes", action="store_true")
    p.add_argument("--no-api", action="store_true", help="skip the runs through the Python API (connected once)")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    port = "6391"
    try:
        if not (Path.home() / ".ray" / "auth_token").exists():
            subprocess.run(["ray", "get-auth-token", "--generate"], check=True, capture_output=True, env=os.environ | LOOPBACK)
        start = time.perf_counter()
        ray_start("--head", f"--port={port}", "--include-dashboard=false", f"--num-cpus={1 if args.two_nodes else args.workers}")
        if args.two_nodes:
            second_node(f"127.0.0.1:{port}")
        print(f"ray start ({2 if args.two_nodes else 1} node(s)): {time.perf_counter() - start:.1f} s (once per cluster)")
        on_ray = ["--backend", "ray", "--address", f"127.0.0.1:{port}"]
        for agent in ["random", *args.agents.split(",")]:
            local = evaluate(agent, tmp / f"{agent}-local", args.workers, args.trials, [])
            ray = evaluate(agent, tmp / f"{agent}-ray", args.workers, args.trials, on_ray)
            same = (tmp / f"{agent}-local" / "episodes.csv").read_bytes() == (tmp / f"{agent}-ray" / "episodes.csv").read_bytes()
            n = 9 * args.trials
            print(f"{agent:20s} local {local:6.1f} s ({n / local:6.1f} trials/s)   ray {ray:6.1f} s ({n / ray:6.1f} trials/s)"
                  f"   ray/local {ray / local:.2f} (target <= 1.20)   same episodes.csv: {same}")
            bad = non_loopback_sockets()
            print(f"{'':20s} Ray sockets not on 127.0.0.1: {len(bad)}" + "".join(f"\n    {b}" for b in bad))
            if bad:
                raise SystemExit("Ray used an address other than 127.0.0.1")
            if agent != "random" and not args.no_api:  # the same in this process, connected once: no per-command start
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
