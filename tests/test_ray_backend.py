"""The Ray backend (`protocol.ray_backend`): the same records as the local pool, resume across backends, a killed
worker's chunk replayed once, verification on Ray. One local Ray instance (2 CPUs, 127.0.0.1 only) for the
module; the two-node run is `benchmarks/ray_scaling.py --two-nodes` (it starts a second raylet)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from icrl_bench.agents import AgentSpec  # noqa: E402
from icrl_bench.protocol import evaluate  # noqa: E402
from icrl_bench.protocol.ray_backend import RayBackend, connect, ray_chunks  # noqa: E402
from icrl_bench.protocol.runner import AgentError  # noqa: E402

SUITES = ["id", "stitching"]

KILLER = '''
import os, signal
from pathlib import Path
from icrl_bench.baselines import BUILTIN_AGENTS


class KilledOnce(BUILTIN_AGENTS["explorer"]):
    """The explorer, whose worker process is killed (SIGKILL) the first time it plays `trial` of `suite`."""

    def __init__(self, marker, suite="id", trial=3, always=False):
        super().__init__()
        self.marker, self.always = Path(marker), always
        from icrl_bench.protocol.suites import get_suite

        self.victim = get_suite(suite).trial_seeds(0, trial)[1]  # the agent seed that trial shows

    def begin_trial(self, info):
        super().begin_trial(info)
        self.here = info.seed
        self.steps = 0

    def act(self, obs):
        self.steps += 1
        if self.steps == 5 and self.here == self.victim and (self.always or not self.marker.exists()):
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().act(obs)
'''


@pytest.fixture(scope="module")
def cluster():
    connect(RayBackend())  # what --backend ray does with no --address
    ray_ = __import__("ray")
    yield ray_
    ray_.shutdown()


def _episodes(folder):
    return (Path(folder) / "episodes.csv").read_bytes()


def test_ray_finishes_a_local_run_with_the_same_records_and_binds_to_loopback_only(cluster, tmp_path):
    """An interrupted local run resumed on Ray (2 workers) ends with exactly the records of an uninterrupted local
    run: none lost, none twice, byte for byte."""
    full = evaluate(AgentSpec("explorer"), SUITES, tmp_path / "full", trials=10, progress=False)
    evaluate(AgentSpec("explorer"), SUITES, tmp_path / "cut", trials=10, progress=False)
    part = next((tmp_path / "cut" / "parts").glob("*.jsonl"))
    lines = part.read_text().splitlines()
    part.write_text("\n".join(lines[:7]) + "\n")  # an interrupted run: 7 of 20 trials finished
    (tmp_path / "cut" / "results.json").unlink()
    resumed = evaluate(AgentSpec("explorer"), SUITES, tmp_path / "cut", trials=10, progress=False, workers=2,
                       resume=True, ray=RayBackend(chunks_per_worker=2))  # fmt: skip
    assert _episodes(tmp_path / "full") == _episodes(tmp_path / "cut")
    rows = [json.loads(x) for p in (tmp_path / "cut" / "parts").glob("*.jsonl") for x in p.read_text().splitlines()]
    assert len(rows) == 20 and len({(r["suite"], r["trial"]) for r in rows}) == 20
    timeless = [{s: {k: v for k, v in m.items() if k not in ("wall_time", "steps_per_second")}
                 for s, m in r["summary"].items()} for r in (full, resumed)]  # fmt: skip
    assert timeless[0] == timeless[1]
    nodes = cluster.nodes()
    assert nodes and all(n["NodeManagerAddress"] == "127.0.0.1" for n in nodes)
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=False).stdout
    ours = [line for line in listening.splitlines() if any(w in line for w in ("raylet", "gcs_server", "ray::"))]
    local_addresses = [line.split()[3].rpartition(":")[0] for line in ours]
    assert ours and set(local_addresses) <= {"127.0.0.1", "[::ffff:127.0.0.1]", "[::1]"}, ours


def test_a_killed_worker_is_replaced_and_its_chunk_replayed_once(cluster, tmp_path):
    agent = tmp_path / "killer.py"
    agent.write_text(KILLER)
    marker = tmp_path / "killed"
    spec = AgentSpec(f"{agent}:KilledOnce", {"marker": str(marker)})
    evaluate(AgentSpec("explorer"), ["id"], tmp_path / "ref", trials=12, progress=False)
    evaluate(spec, ["id"], tmp_path / "ray", trials=12, progress=False, workers=2, ray=RayBackend(chunks_per_worker=2))
    assert marker.exists(), "the agent never killed its worker: the test tested nothing"
    killed = int(marker.read_text())
    assert killed != os.getpid()
    assert _episodes(tmp_path / "ref") == _episodes(tmp_path / "ray")
    rows = [json.loads(x) for p in (tmp_path / "ray" / "parts").glob("*.jsonl") for x in p.read_text().splitlines()]
    assert sorted(r["trial"] for r in rows) == list(range(12))
    # A worker that dies every time: after the retries, an error that names the chunk; nothing of it written.
    with pytest.raises(AgentError, match=r"suite 'id', trials 0-3: the worker playing them died 1 time\(s\)"):
        evaluate(AgentSpec(f"{agent}:KilledOnce", {"marker": str(marker), "always": True}), ["id"], tmp_path / "bad",
                 trials=4, progress=False, workers=1, ray=RayBackend(max_retries=0, chunks_per_worker=1))  # fmt: skip


def test_chunks_cover_every_trial_once():
    chunks = ray_chunks([("id", list(range(100))), ("ood-xl", list(range(7)))], workers=3, chunks_per_worker=4)
    assert sorted((s, k) for s, ks in chunks for k in ks) == sorted(
        [("id", k) for k in range(100)] + [("ood-xl", k) for k in range(7)])
    assert max(len(ks) for _, ks in chunks) == 9
    assert all(len(ks) >= 25 for s, ks in ray_chunks([("id", list(range(100)))], 3, 4, batch=25) if s == "id")


def test_verify_on_ray_gives_the_local_verdict(cluster, tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from icrl_bench.leaderboard.submission import submit
    from icrl_bench.leaderboard.verify import verify

    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    evaluate(AgentSpec("random"), ["id"], tmp_path / "r", progress=False)
    entry = submit(tmp_path / "r" / "results.json", "random entry", {"authors": "Tests"}, tmp_path / "board")
    local = verify(entry, AgentSpec("explorer"), key, trials=4)
    on_ray = verify(entry, AgentSpec("explorer"), key, trials=4, workers=2, ray=RayBackend())
    assert local["suites"] == on_ray["suites"] and local["seed_sha256"] == on_ray["seed_sha256"]


@pytest.mark.slow
def test_a_real_two_node_evaluation_on_loopback():
    """`benchmarks/ray_scaling.py --two-nodes`: a head and a second raylet on this machine (1 CPU each, so the two
    workers' actors run on different nodes), the same episodes.csv as the local pool, and no Ray socket on any
    address but 127.0.0.1. Slow: it starts and stops its own cluster (about a minute); run with -m slow."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "ray_scaling.py"
    ray.shutdown()  # the module's instance: the script's cluster is a separate one
    result = subprocess.run([sys.executable, str(script), "--workers", "2", "--trials", "5", "--agents", "explorer",
                             "--two-nodes", "--no-api"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ray start (2 node(s))" in result.stdout
    assert result.stdout.count("same episodes.csv: True") == 2
    assert result.stdout.count("Ray sockets not on 127.0.0.1: 0") == 2
