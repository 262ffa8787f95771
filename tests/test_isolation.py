"""Isolated agents: hostile agents under `leaderboard verify` obtain neither the map nor the verifier's secret.

Each attack is first shown to work where the agent shares the runner's process (or on the public suites), so
that each test could fail; then the same agent, under verification, finds nothing.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from icrl_bench.agents import AgentSpec, AgentSpecError
from icrl_bench.envs.stitching import PAPER_STITCHING_TASK
from icrl_bench.leaderboard.signing import derived_seed
from icrl_bench.leaderboard.submission import submit
from icrl_bench.leaderboard.verify import secret_numbers, verify
from icrl_bench.protocol import evaluate
from icrl_bench.protocol.evaluation import _suite
from icrl_bench.protocol.isolation import IsolatedSpec
from icrl_bench.protocol.sandbox import Sandbox

HOSTILE = str(Path(__file__).with_name("hostile_agents.py"))
REPORT_PREFIX = "HOSTILE-REPORT "  # hostile agents under a sandbox report on stderr
META = {"authors": "Tests"}
TRIALS = 3
PAPER_TASK = "/".join(PAPER_STITCHING_TASK.rows)


@pytest.fixture(scope="module")
def key():
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # fixed: verification seeds are stable


@pytest.fixture(scope="module")
def entry(tmp_path_factory):
    """A whole-suite entry on `id` (random agent) to verify hostile agents against."""
    root = tmp_path_factory.mktemp("entry")
    evaluate(AgentSpec("random"), ["id"], root / "r", progress=False)
    return submit(root / "r" / "results.json", "random entry", META, root / "board")


def hostile(name, report):
    return AgentSpec(f"{HOSTILE}:{name}", {"report": str(report)})


def findings(report):
    return [json.loads(line) for line in Path(report).read_text().splitlines()]


def told(capfd):
    """What sandboxed hostile agents (``report="-"``) reported on stderr since the last call."""
    return [json.loads(line[len(REPORT_PREFIX) :]) for line in capfd.readouterr().err.splitlines()
            if line.startswith(REPORT_PREFIX)]  # fmt: skip


def verification_maps(entry, key):
    """The maps the verification re-run plays (known to the test, which holds the key)."""
    data = json.loads(Path(entry).read_text())
    data["verification"] = None
    _, entropy = secret_numbers(derived_seed(key, data))
    return {"/".join(_suite("id", entropy).tasks[k][0].rows) for k in range(TRIALS)}, entropy


def public_maps(trials=TRIALS):
    return {"/".join(_suite("id", None).tasks[k][0].rows) for k in range(trials)}


@pytest.mark.parametrize("name", ["StackSnooper", "GcSnooper"])
def test_inspecting_memory_finds_the_map_in_process_but_not_under_verify(name, entry, key, tmp_path, capfd):
    report = tmp_path / "in-process.jsonl"
    evaluate(hostile(name, report), ["id"], tmp_path / "ev", trials=TRIALS, progress=False)
    found = {m for f in findings(report) for m in f["maps"]}
    assert public_maps() <= found  # in the runner's process the attack works

    told(capfd)
    verify(entry, hostile(name, "-"), key, trials=TRIALS)
    seen = told(capfd)
    assert len(seen) == TRIALS and all(f["pid"] != os.getpid() for f in seen)
    truth, _ = verification_maps(entry, key)
    found = {m for f in seen for m in f["maps"]}
    assert found <= {PAPER_TASK} and not truth & found  # only the paper's published stitching map, a constant
    assert all(f.get("secrets", []) == [] for f in seen)


def test_evaluate_isolate_hides_the_map_too(tmp_path, capfd):
    told(capfd)
    evaluate(IsolatedSpec(hostile("GcSnooper", "-")), ["id"], tmp_path / "ev", trials=TRIALS, progress=False)
    assert {m for f in told(capfd) for m in f["maps"]} <= {PAPER_TASK}


def test_regenerating_the_public_suites_does_not_give_the_verification_maps(entry, key, tmp_path, capfd):
    told(capfd)
    evaluate(IsolatedSpec(hostile("SuiteRegenerator", "-")), ["id"], tmp_path / "ev", trials=TRIALS, progress=False)
    assert {m for f in told(capfd) for m in f["maps"]} == public_maps()  # the public suites are public

    verify(entry, hostile("SuiteRegenerator", "-"), key, trials=TRIALS)
    seen = told(capfd)
    assert len(seen) == TRIALS and [f["maps"] for f in seen] == [[]] * TRIALS  # fresh seeds, fresh maps


def test_reading_results_folders_finds_nothing_of_the_verification(entry, key, tmp_path, monkeypatch, capfd):
    # While `evaluate` writes a results folder in the working folder, the agent can read it (run.json, trials) ...
    tmp_path.chmod(0o755)  # readable by others: the sandboxed agent runs as nobody
    monkeypatch.chdir(tmp_path)
    told(capfd)
    evaluate(IsolatedSpec(hostile("FolderSnooper", "-")), ["id"], tmp_path / "results", trials=TRIALS, progress=False)
    assert any('"seed": 0' in text for f in told(capfd) for text in f["files"])
    # ... but verification writes none: its records stay in the verifier's memory.
    verify(entry, hostile("FolderSnooper", "-"), key, trials=TRIALS)
    _, entropy = verification_maps(entry, key)
    texts = [text for f in told(capfd) for text in f["files"]]
    assert not any(str(entropy) in text for text in texts)
    assert not any('"task_entropy"' in text for text in texts)


def test_the_key_is_not_in_any_command_line_or_environment(entry, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "icrl_bench.cli", "leaderboard", "verify", str(entry), "--agent",
         f"{HOSTILE}:ProcSnooper", "--agent-arg", "report=-", "--trials", str(TRIALS), "--key-file", "-"],
        input=pem, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode in (0, 1), run.stderr  # verified or not: it ran to the end
    seen = [json.loads(x[len(REPORT_PREFIX) :]) for x in run.stderr.splitlines() if x.startswith(REPORT_PREFIX)]
    assert len(seen) == TRIALS
    body = pem.splitlines()[1]  # the base64 line of the key
    for f in seen:
        readable = {k: v for k, v in f["proc"].items() if not v.startswith("unreadable")}
        assert any(k.endswith("environ") and "PATH=" in v for k, v in readable.items())  # it did read what it could
        assert not any(k.endswith("cmdline") and "leaderboard" in v for k, v in readable.items())  # the sandbox
        for where, text in readable.items():
            assert body not in text and "PRIVATE KEY" not in text, where


def test_isolated_agents_errors_name_the_place_and_deaths_are_reported(tmp_path):
    from icrl_bench.protocol.runner import AgentError

    agent = tmp_path / "bad.py"
    agent.write_text(
        "import os\n"
        "from icrl_bench.protocol.agent import Agent\n"
        "class Raises(Agent):\n"
        "    def act(self, obs):\n"
        "        raise ValueError('boom')\n"
        "class Exits(Agent):\n"
        "    def act(self, obs):\n"
        "        os._exit(3)\n"
        "class Interrupts(Agent):\n"
        "    def act(self, obs):\n"
        "        raise KeyboardInterrupt\n"
    )  # fmt: skip
    tmp_path.chmod(0o755)  # the sandbox runs the agent as nobody: its file must be readable by others
    with pytest.raises(AgentError) as raised:
        evaluate(IsolatedSpec(AgentSpec(f"{agent}:Raises")), ["id"], tmp_path / "a", trials=2, progress=False)
    message = str(raised.value)
    assert "suite 'id', trial 0, episode 0, step 0" in message and "ValueError" in message and "boom" in message
    assert f"{agent}:5 in act" in message
    with pytest.raises(AgentError, match=r"trial 0, episode 0, step 0.*exited with status 3"):
        evaluate(IsolatedSpec(AgentSpec(f"{agent}:Exits")), ["id"], tmp_path / "b", trials=2, progress=False)
    with pytest.raises(AgentError, match="KeyboardInterrupt"):  # the agent's, not the user's
        evaluate(IsolatedSpec(AgentSpec(f"{agent}:Interrupts")), ["id"], tmp_path / "c", trials=2, progress=False)


def test_verify_with_workers_and_through_a_command_prefix(entry, key):
    prefix = f"env PATH={Path(sys.executable).parent}:{os.environ['PATH']}"  # stands in for a container runtime
    one = verify(entry, AgentSpec("explorer"), key, trials=4)
    two = verify(entry, AgentSpec("explorer"), key, trials=4, workers=2, sandbox=Sandbox("prefix", prefix=prefix))
    assert one["suites"] == two["suites"] and one["seed_sha256"] == two["seed_sha256"]


def test_verification_seeds_cannot_be_searched():
    """A 32-bit evaluation seed was recovered by brute force from the agent seeds in a minute, which gave the
    environment seeds (every start and slip). Verification seeds have 128 bits, and a trial's environment seed
    comes from SHA-256: 128 bits, independent of the 32-bit agent seed an agent is shown."""
    from icrl_bench.protocol.suites import SECRET_SEED_FLOOR, get_suite

    seed, entropy = secret_numbers(bytes(range(32)))
    assert seed - SECRET_SEED_FLOOR > 2**100 and entropy > 2**100  # 128 secret bits each (these bytes: 124)
    env_seeds, agent_seeds = zip(*(get_suite("ood-slippery").trial_seeds(seed, k) for k in range(50)))
    assert all(s.bit_length() > 96 for s in env_seeds) and all(s < 2**32 for s in agent_seeds)
    committed = json.loads((Path(__file__).parents[1] / "leaderboard" / "submissions" / "baseline-random.json").read_text())
    record = next(r for r in committed["results"]["records"]["id"] if r["trial"] == 3)
    assert get_suite("id").trial_seeds(0, 3) == (record["env_seed"], record["agent_seed"])  # public seeds unchanged
    suite = _suite("id", entropy)
    assert suite.tasks[0][0] != _suite("id", None).tasks[0][0]


def test_no_environment_variable_is_a_key_source_a_held_key_file_is_refused_and_stdin_works(entry, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()  # fmt: skip
    verify_cmd = [sys.executable, "-m", "icrl_bench.cli", "leaderboard", "verify", str(entry), "--trials", "2"]
    env = dict(os.environ)
    wrapped = subprocess.run(["env", f"ICRL_BENCH_VERIFIER_KEY={pem}", *verify_cmd], env=env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert wrapped.returncode == 2 and "give the verifier's private key: --key-file - < verifier.pem" in wrapped.stderr
    key_file = tmp_path / "verifier.pem"
    key_file.write_text(pem)
    with open(key_file) as stdin:  # `timeout ... < verifier.pem`: the wrapper keeps the key file open
        redirected = subprocess.run(["timeout", "120", *verify_cmd, "--key-file", "-"], stdin=stdin, env=env,
                                    capture_output=True, text=True, timeout=300)  # fmt: skip
    assert redirected.returncode == 2 and "the key file is also open in process" in redirected.stderr
    piped = subprocess.run([*verify_cmd, "--key-file", "-", "--agent", f"{HOSTILE}:ProcSnooper", "--agent-arg",
                            "report=-"], input=pem, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert piped.returncode == 1 and "quick check" in piped.stdout, piped.stderr  # ran; 2 trials never verify
    body = pem.splitlines()[1]
    seen = [json.loads(x[len(REPORT_PREFIX) :]) for x in piped.stderr.splitlines() if x.startswith(REPORT_PREFIX)]
    assert seen and all(body not in text for f in seen for text in f["proc"].values())


def test_a_mistyped_agent_fails_at_once_under_isolation(tmp_path):
    run = subprocess.run([sys.executable, "-m", "icrl_bench.cli", "evaluate", "nosuch_module:Thing", "--isolate",
                          "--suites", "id", "--trials", "1", "--out", str(tmp_path / "o"), "--no-progress"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 2 and "cannot import module 'nosuch_module'" in run.stderr


def test_an_entry_cannot_pick_the_code_that_verify_runs(entry, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    marker = tmp_path / "ran"
    data = json.loads(Path(entry).read_text())
    data["results"]["agent"].update(name="os:system", kwargs={"command": f"touch {marker}"})
    hostile_entry = Path(entry).with_name("hostile-entry.json")
    hostile_entry.write_text(json.dumps(data))
    # Without the rule, the entry's agent spec is code: building it runs the command.
    with pytest.raises(AgentSpecError, match="not an agent"):  # ... and only then finds that it is no agent
        AgentSpec("os:system", {"command": f"touch {marker}"}).build()
    assert marker.exists()
    marker.unlink()
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "icrl_bench.cli", "leaderboard", "verify", str(hostile_entry),
                          "--key-file", "-", "--trials", "2"], input=pem, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 2 and "not built in: verify never runs code that an entry names" in run.stderr
    assert not marker.exists()
    # A built-in agent named by the entry runs (printed first, with its sandbox).
    run = subprocess.run([sys.executable, "-m", "icrl_bench.cli", "leaderboard", "verify", str(entry),
                          "--key-file", "-", "--trials", "2"], input=pem, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 1 and "verify will run: random with options {}; sandbox: bubblewrap" in run.stderr


def test_the_process_that_starts_agents_never_holds_the_key_and_the_signer_signs_one_entry(entry, tmp_path,
                                                                                           monkeypatch):  # fmt: skip
    import gc

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from icrl_bench.leaderboard.signer import SignerProcess
    from icrl_bench.leaderboard.signing import SigningError

    key_file = tmp_path / "verifier.pem"
    key_file.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    key_file.chmod(0o600)
    seen = []
    real_play = __import__("icrl_bench.leaderboard.verify", fromlist=["play"]).play

    def watching_play(*args, **kwargs):  # while agents play: which key objects does this process hold?
        seen.extend(type(o).__name__ for o in gc.get_objects() if isinstance(o, ed25519.Ed25519PrivateKey))
        return real_play(*args, **kwargs)

    monkeypatch.setattr("icrl_bench.leaderboard.verify.play", watching_play)
    before = Path(entry).read_text()
    with SignerProcess(str(key_file)) as signer:
        block = verify(entry, AgentSpec("random"), signer, trials=2)
        assert block["key_id"] == signer.key_id and seen == []  # the key lived in the signer's process only
        data = json.loads(Path(entry).read_text())
        with pytest.raises(SigningError, match="only the entry whose seed it derived"):
            signer.sign(dict(block), data)  # signed once: a second signature needs a new seed request
        other = json.loads(before)
        signer.seed(other)
        other["meta"]["name"] = "another entry"
        with pytest.raises(SigningError, match="only the entry whose seed it derived"):
            signer.sign(dict(block), other)  # a seed of one entry never signs another
