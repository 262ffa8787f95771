"""Faults as a user meets them on the command line: agents that kill their process, bad values, stuck folders.

Each case asserts the message: what happened, where (suite, trial, and the episode where it is known), and what
to do next."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

CRASHING = '''
import os, signal
from icrl_bench.protocol.agent import Agent

class Crashing(Agent):
    """Plays trial 0 to the end, then dies in trial 1 in the way its option says."""
    def __init__(self, how="exit"):
        self.how, self.trials = how, 0
    def begin_trial(self, info):
        self.trials += 1
    def act(self, obs):
        if self.trials == 2:
            if self.how == "exit":
                os._exit(3)
            os.kill(os.getpid(), {"segfault": signal.SIGSEGV, "oom": signal.SIGKILL}[self.how])
        return 0

def make_failing(**options):
    raise ValueError("wrong options: " + repr(options))
'''


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "icrl_bench.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)  # fmt: skip


@pytest.fixture
def agent_file(tmp_path):
    path = tmp_path / "crashing.py"
    path.write_text(CRASHING)
    tmp_path.chmod(0o755)  # under --isolate the sandbox runs the agent as nobody: its folder must be open to others
    return path


@pytest.mark.parametrize("how, said", [("exit", "exited with status 3"),
                                       ("segfault", "was killed by SIGSEGV (a segmentation fault)"),
                                       ("oom", "was killed by SIGKILL (killed: out of memory?)")])  # fmt: skip
def test_an_agent_that_kills_its_process_is_named_with_the_resume_hint(agent_file, tmp_path, how, said):
    out = tmp_path / "out"
    run = cli("evaluate", f"{agent_file}:Crashing", "--agent-arg", f"how={how}", "--suites", "stitching-paper",
              "--trials", "3", "--out", out, "--no-progress")  # fmt: skip
    assert run.returncode == 2
    assert f"error: suite 'stitching-paper', trial 1: the agent's worker process {said}" in run.stderr
    assert f"finished trials are saved in {out}; fix the agent and continue with --resume" in run.stderr
    assert len(next((out / "parts").glob("*.jsonl")).read_text().splitlines()) == 1  # trial 0 was kept


def test_with_two_workers_and_isolated_the_death_is_named_too(agent_file, tmp_path):
    run = cli("evaluate", f"{agent_file}:Crashing", "--suites", "stitching-paper", "--trials", "4", "--workers", "2",
              "--out", tmp_path / "w", "--no-progress")  # fmt: skip
    assert run.returncode == 2  # each worker plays two trials and dies in its second: trial 1 or 3
    assert re.search(r"suite 'stitching-paper', trial [13]: the agent's worker process exited with status 3", run.stderr)
    assert "Traceback" not in run.stderr and "BrokenProcessPool" not in run.stderr
    run = cli("evaluate", f"{agent_file}:Crashing", "--suites", "stitching-paper", "--trials", "3", "--isolate",
              "--batch-size", "1", "--out", tmp_path / "i", "--no-progress")  # fmt: skip
    assert run.returncode == 2
    assert "suite 'stitching-paper', trial 1, episode 0, step 0: the agent's process exited with status 3" in run.stderr


def test_a_run_that_failed_before_its_first_trial_can_be_rerun_with_new_settings(agent_file, tmp_path):
    out = tmp_path / "out"
    first = cli("evaluate", f"{agent_file}:make_failing", "--agent-arg", "x=1", "--suites", "stitching-paper",
                "--trials", "2", "--out", out, "--no-progress")  # fmt: skip
    assert first.returncode == 2 and "wrong options" in first.stderr
    again = cli("evaluate", f"{agent_file}:Crashing", "--agent-arg", "how=exit", "--suites", "stitching-paper",
                "--trials", "1", "--out", out, "--no-progress")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "held a run with other settings (agent, suites) but no finished trial; starting afresh" in again.stderr
    other = cli("evaluate", "random", "--suites", "stitching-paper", "--trials", "1", "--out", out, "--no-progress")
    assert other.returncode == 2 and "already holds an evaluation" in other.stderr and "--overwrite" in other.stderr
    replaced = cli("evaluate", "random", "--suites", "stitching-paper", "--trials", "1", "--out", out, "--no-progress",
                   "--overwrite")  # fmt: skip
    assert replaced.returncode == 0 and "removing the evaluation" in replaced.stderr
    assert json.loads((out / "results.json").read_text())["agent"]["name"] == "random"


def test_agent_errors_name_the_file_and_line_and_debug_prints_the_traceback(tmp_path):
    agent = tmp_path / "raising.py"
    agent.write_text("from icrl_bench.protocol.agent import Agent\n\nclass Raising(Agent):\n"
                     "    def act(self, obs):\n        return helper(obs)\n\ndef helper(obs):\n"
                     "    return [0][obs + 5]\n")  # fmt: skip
    run = cli("evaluate", f"{agent}:Raising", "--suites", "id", "--trials", "1", "--out", tmp_path / "a", "--no-progress")
    assert f"the agent raised IndexError: list index out of range (at {agent}:8 in helper)" in run.stderr
    assert "--debug prints the agent's traceback" in run.stderr and "Traceback" not in run.stderr
    run = cli("evaluate", f"{agent}:Raising", "--suites", "id", "--trials", "1", "--out", tmp_path / "b", "--no-progress",
              "--debug")  # fmt: skip
    assert "the agent's traceback:" in run.stderr and f'File "{agent}", line 5, in act' in run.stderr


@pytest.mark.parametrize("args, message", [
    (["--agent-cmd", ""], "--agent-cmd is empty: give the command that starts your agent"),
    (["--agent-cmd", "no-such-program-xyz --flag"], "the program 'no-such-program-xyz' was not found"),
    (["random", "--workers", "0"], "--workers must be at least 1, got 0"),
    (["random", "--step-timeout", "-1"], "--step-timeout must be positive seconds, or 0 for no limit; got -1.0"),
    (["random", "--trials", "0"], "--trials must be at least 1, got 0"),
    (["random", "--batch-size", "0"], "batch_size must be at least 1"),
    (["random", "--resume", "--out", "{tmp}/nothing-here"], "nothing to resume in"),
    (["random", "--out", "{tmp}/a-file"], "is a file, not a folder: choose another --out"),
    (["random", "--suites", "id,nope"], "unknown suite 'nope'"),
    (["random", "--agent-arg", "novalue"], "--agent-arg must look like key=value"),
    (["random", "--in-process", "--workers", "2"], "--in-process plays in this one process"),
    (["explorer", "--agent", "random"], "two agents given ('explorer' and --agent 'random'): give one"),
    (["random", "--step-timeout", "nan"], "--step-timeout must be positive seconds, or 0 for no limit; got nan"),
])  # fmt: skip
def test_every_evaluate_value_is_checked_with_a_message_that_says_what_to_fix(tmp_path, args, message):
    (tmp_path / "a-file").write_text("not a folder")
    run = cli("evaluate", *[a.replace("{tmp}", str(tmp_path)) for a in args], "--no-progress", cwd=tmp_path)
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert (tmp_path / "a-file").read_text() == "not a folder"
    assert not Path(tmp_path, "nothing-here").exists()


def test_verify_checks_its_values_and_wants_a_key(tmp_path):
    run = cli("leaderboard", "verify", tmp_path / "x.json", "--agent", "random", "--workers", "0")
    assert run.returncode == 2 and "--workers and --trials must be at least 1" in run.stderr
    run = subprocess.run([sys.executable, "-m", "icrl_bench.cli", "leaderboard", "verify", str(tmp_path / "x.json"),
                          "--agent", "random"], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if k != "ICRL_BENCH_VERIFIER_KEY"})  # fmt: skip
    assert run.returncode == 2 and "give the verifier's private key: --key-file - < verifier.pem" in run.stderr


def test_verify_of_a_malformed_submission_is_a_clear_error(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()  # fmt: skip
    for content in ("[1]", '{"results": 5}'):
        (tmp_path / "bad.json").write_text(content)
        run = subprocess.run([sys.executable, "-m", "icrl_bench.cli", "leaderboard", "verify", str(tmp_path / "bad.json"),
                              "--key-file", "-"], input=pem, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
        assert "names no agent to re-run: give --agent or --agent-cmd" in run.stderr, run.stderr


def test_workers_end_when_the_evaluating_process_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    code = ("from icrl_bench.protocol.workers import _die_with_parent; import time\n"
            "_die_with_parent(); print('ready', flush=True); time.sleep(60)")  # fmt: skip
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {code!r}], stdout=sys.stdout)\n"
        "print(child.pid, flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)  # fmt: skip
    child = int(parent.stdout.readline())
    assert parent.stdout.readline().strip() == "ready"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        if open(f"/proc/{child}/stat").read().split()[2] == "Z":
            return  # ended; a zombie until its new parent reaps it
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the worker outlived its killed parent")
