"""The sandbox of isolated agents (bubblewrap): attacks on the operating system that a plain child process allows.

Each attack is first shown to work in a plain child process (``Sandbox("none")``, as the tests run: root in CI and
in most maintainers' containers), then shown to fail in the default sandbox. Hostile agents report over stderr
(a sandboxed agent cannot write a file), which the tests read.
"""

import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from icrl_bench.agents import AgentSpec
from icrl_bench.protocol import evaluate
from icrl_bench.protocol.isolation import IsolatedSpec
from icrl_bench.protocol.sandbox import Sandbox, SandboxError, bwrap_status, choose_sandbox

HOSTILE = str(Path(__file__).with_name("hostile_agents.py"))
REPORT_PREFIX = "HOSTILE-REPORT "
ROOT = os.geteuid() == 0

needs_bwrap = pytest.mark.skipif(not bwrap_status()[0] and not os.environ.get("CI"),
                                 reason=f"no sandbox here: {bwrap_status()[1]}")  # fmt: skip


def reports(text):
    return [json.loads(line[len(REPORT_PREFIX) :]) for line in text.splitlines() if line.startswith(REPORT_PREFIX)]


def play(name, sandbox, tmp_path, capfd, **kwargs):
    """One isolated trial of a hostile agent; its findings."""
    spec = AgentSpec(f"{HOSTILE}:{name}", {"report": "-", **kwargs})
    capfd.readouterr()
    evaluate(IsolatedSpec(spec, sandbox), ["id"], tmp_path / f"{name}-{sandbox.kind}", trials=1, progress=False)
    found = reports(capfd.readouterr().err)
    assert len(found) == 1, found
    return found[0]


@needs_bwrap
def test_reading_the_runners_memory_works_in_a_child_process_and_not_in_the_sandbox(tmp_path, capfd):
    secret = b"ICRLSECRET-" + os.urandom(16).hex().encode()  # held in this process, the runner's, all along
    plain = play("MemoryScanner", Sandbox("none"), tmp_path, capfd)
    if ROOT:  # root reads any process's memory: the runner's secret is found
        assert secret.decode() in plain["secrets"] and os.getpid() in plain["scanned"]
    boxed = play("MemoryScanner", choose_sandbox(), tmp_path, capfd)
    assert boxed["secrets"] == [] and os.getpid() not in boxed["scanned"]  # no other process of the machine is seen
    assert secret  # (kept alive to here)


def _planted():
    folders = {*site.getsitepackages(), sysconfig.get_paths()["purelib"],
               f"/usr/local/lib/python{sys.version_info[0]}.{sys.version_info[1]}/dist-packages"}  # fmt: skip
    return [Path(f, "icrl_bench_planted_by_test.pth") for f in folders if Path(f, "icrl_bench_planted_by_test.pth").exists()]


@needs_bwrap
def test_planting_a_pth_file_works_in_a_child_process_and_not_in_the_sandbox(tmp_path, capfd):
    try:
        plain = play("PthPlanter", Sandbox("none"), tmp_path, capfd)
        assert plain["planted"] and _planted()  # it would run in every later interpreter of this environment
        for path in _planted():
            path.unlink()
        boxed = play("PthPlanter", choose_sandbox(), tmp_path, capfd)
        assert boxed["planted"] == [] and _planted() == []
    finally:
        for path in _planted():
            path.unlink()


@needs_bwrap
@pytest.mark.parametrize("sandboxed", [False, True])
def test_a_secret_in_an_ancestors_environment(tmp_path, sandboxed):
    marker = "m" + os.urandom(8).hex()
    command = [sys.executable, "-m", "icrl_bench.cli", "evaluate", f"{HOSTILE}:AncestorScanner", "--agent-arg",
               "report=-", "--isolate", "--suites", "id", "--trials", "1", "--out", str(tmp_path / "r"), "--no-progress"]
    run = subprocess.run(command + ([] if sandboxed else ["--no-sandbox"]), capture_output=True, text=True, timeout=300,
                         env=os.environ | {"ICRL_BENCH_TEST_SECRET": marker, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    (found,) = reports(run.stderr)
    readable = {k: v for k, v in found["proc"].items() if not v.startswith("unreadable")}
    if sandboxed:  # no ancestor outside the sandbox is visible
        assert not any(marker in v for v in readable.values())
        assert not any("icrl_bench.cli" in v for v in readable.values())
    else:  # scrubbed from the child's environment, yet still in its parent's initial one
        assert any(marker in v for v in readable.values())


@needs_bwrap
@pytest.mark.skipif(not ROOT, reason="as another user the sandbox keeps that user's rights (README: What to trust)")
def test_a_file_only_root_may_read_stays_closed_in_the_sandbox(tmp_path, capfd):
    key = Path.cwd() / f".test-key-{os.getpid()}"  # in the working folder, which the sandbox shows
    key.write_text("PRIVATE KEY material\n")
    key.chmod(0o600)
    try:
        plain = play("FileReader", Sandbox("none"), tmp_path, capfd, path=str(key))
        assert plain["text"].startswith("PRIVATE KEY")
        boxed = play("FileReader", choose_sandbox(), tmp_path, capfd, path=str(key))
        assert boxed["text"] is None and "Permission denied" in boxed["error"]
    finally:
        key.unlink()


@needs_bwrap
def test_the_sandbox_is_read_only_offline_and_records_what_it_is(tmp_path, capfd):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:  # a server of the host, on loopback only
        port = server.getsockname()[1]
        plain = play("Prober", Sandbox("none"), tmp_path, capfd, path=str(tmp_path / "w.txt"), port=port)
        boxed = play("Prober", choose_sandbox(), tmp_path, capfd, path=str(Path.cwd() / "probe-write.txt"), port=port)
    assert plain["network"] == "connected" and plain["write"] == "wrote"
    assert boxed["uid"] == (65534 if ROOT else os.getuid())
    assert "Read-only file system" in boxed["write"] and not Path("probe-write.txt").exists()
    assert boxed["network"].startswith("refused or unreachable")  # its own network namespace: the host is not there
    assert boxed["processes"] <= 3  # bubblewrap's init, the agent (and setpriv's exec of it): nothing else
    assert "bubblewrap" in choose_sandbox().describe()


def test_without_a_sandbox_isolation_refuses_unless_asked_explicitly(monkeypatch):
    import icrl_bench.protocol.sandbox as sandbox

    monkeypatch.setattr(sandbox, "bwrap_status", lambda: (False, "bubblewrap is not installed"))
    with pytest.raises(SandboxError, match="--no-sandbox"):
        choose_sandbox()
    with pytest.raises(SandboxError, match="not installed"):
        IsolatedSpec(AgentSpec("explorer"))
    assert choose_sandbox(no_sandbox=True).kind == "none"
    assert choose_sandbox(isolate_with="docker run -i IMAGE").describe() == "started through: docker run -i IMAGE"


def test_a_constructor_that_never_returns_is_stopped(tmp_path, monkeypatch):
    import time

    import icrl_bench.protocol.isolation as isolation
    from icrl_bench.protocol.isolation import AgentProcessError

    monkeypatch.setattr(isolation, "BUILD_TIMEOUT", 2.0)
    start = time.perf_counter()
    with pytest.raises(AgentProcessError, match="did not answer 'build' within 2 s"):
        evaluate(IsolatedSpec(AgentSpec("tests/agents_for_tests.py:HangingConstructor"), Sandbox("none")), ["id"],
                 tmp_path / "h", trials=1, progress=False)  # fmt: skip
    assert time.perf_counter() - start < 30


@pytest.mark.parametrize("how", [["--isolate", "--no-sandbox"], ["--isolate"], ["--agent-cmd"]])
def test_agent_children_die_with_a_killed_runner(tmp_path, how):
    import signal
    import time

    if how == ["--isolate"] and not bwrap_status()[0]:
        pytest.skip("no sandbox here")
    agent = ["--agent-cmd", f"{sys.executable} -c 'import time; time.sleep(1000)'"] if how == ["--agent-cmd"] else [
        "tests/agents_for_tests.py:RetryingHang", *how]  # fmt: skip
    runner = subprocess.Popen([sys.executable, "-m", "icrl_bench.cli", "evaluate", *agent, "--suites", "id", "--trials",
                               "1", "--step-timeout", "0", "--in-process" if how != ["--isolate", "--no-sandbox"]
                               and how != ["--isolate"] else "--no-progress", "--out", str(tmp_path / "o")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    children: list[int] = []
    for _ in range(300):  # wait until the agent process is playing (it hangs in its first act)
        time.sleep(0.1)
        children = _descendants(runner.pid)
        if any("agent_process" in _cmdline(c) or "sleep(1000)" in _cmdline(c) for c in children):
            time.sleep(1.5)
            children = _descendants(runner.pid)
            break
    assert children, "the runner started no agent process"
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(Path(f"/proc/{c}").exists() and "Z" not in _state(c) for c in children):
        time.sleep(0.1)
    assert not any(Path(f"/proc/{c}").exists() and "Z" not in _state(c) for c in children)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(k) for t in Path(f"/proc/{p}/task").iterdir() for k in (t / "children").read_text().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
