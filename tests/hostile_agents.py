"""Cheating agents: each tries one way to reach the hidden map or the verifier's secret, and writes what it found
(JSON lines) to the file named by its ``report`` option, or to stderr with ``report="-"`` (a sandboxed agent cannot
write files). Used by tests/test_isolation.py and tests/test_sandbox.py."""

from __future__ import annotations

import gc
import json
import os
import random
import sys
import tempfile
import warnings
from pathlib import Path

from icrl_bench.protocol.agent import Agent

REPORT_PREFIX = "HOSTILE-REPORT "  # report="-": findings go to stderr on lines starting with this
SECRET_PREFIX = b"ICRLSECRET-"  # what the memory scanner looks for in other processes


def _rows_of(obj):
    """The map rows of anything that looks like a task (a TaskSpec, an env holding one, a suite's list)."""
    if not hasattr(type(obj), "rows") and "rows" not in getattr(type(obj), "__dataclass_fields__", {}):
        return []
    rows = getattr(obj, "rows", None)
    if isinstance(rows, tuple) and rows and all(isinstance(r, str) for r in rows):
        return ["/".join(rows)]
    return []


class _Snooper(Agent):
    def __init__(self, report: str) -> None:
        self.report = report

    def begin_trial(self, info) -> None:
        self.rng = random.Random(info.seed)
        self.info = info
        self.snooped = False

    def act(self, obs: int) -> int:
        if not self.snooped:
            self.snooped = True
            line = json.dumps({"agent": type(self).__name__, "pid": os.getpid(), **self.snoop()})
            if self.report == "-":  # a sandboxed agent cannot write files: it tells its stderr (the runner's)
                print(REPORT_PREFIX + line, file=sys.stderr, flush=True)
            else:
                with open(self.report, "a") as f:
                    f.write(line + "\n")
        return self.rng.randrange(4)

    def snoop(self) -> dict:
        raise NotImplementedError


class StackSnooper(_Snooper):
    """Walks every frame of every thread, and the objects in their locals."""

    def snoop(self) -> dict:
        maps = []
        for frame in sys._current_frames().values():
            while frame is not None:
                for value in list(frame.f_locals.values()):
                    maps += _rows_of(value)
                    for inner in list(getattr(value, "__dict__", {}).values()):
                        maps += _rows_of(inner)
                        if isinstance(inner, (list, tuple)):
                            for item in inner[:200]:
                                maps += _rows_of(item) + [m for v in getattr(item, "__dict__", {}).values() for m in _rows_of(v)]
                frame = frame.f_back
        return {"maps": sorted(set(maps))}


class GcSnooper(_Snooper):
    """Scans every object the garbage collector tracks for tasks, envs and key material."""

    def snoop(self) -> dict:
        maps, secrets = [], []
        with warnings.catch_warnings():  # attributes of deprecated objects warn when read
            warnings.simplefilter("ignore")
            for obj in gc.get_objects():
                try:
                    maps += _rows_of(obj)
                    if type(obj).__name__ in ("ICRLFrozenLakeEnv", "_Trial"):
                        maps += _rows_of(getattr(obj, "task", None))
                    if isinstance(obj, str) and "PRIVATE KEY" in obj:
                        secrets.append(obj)
                except Exception:  # noqa: BLE001 - a cheater ignores what it cannot read
                    pass
        return {"maps": sorted(set(maps)), "secrets": secrets}


class ProcSnooper(_Snooper):
    """Reads the command lines and environments of its parent and grandparent, and its own environment."""

    def snoop(self) -> dict:
        found = {}
        pids = [os.getppid()]
        try:
            pids.append(int(Path(f"/proc/{pids[0]}/stat").read_text().split(")")[-1].split()[1]))
        except (OSError, ValueError, IndexError):
            pass
        for pid in pids + ["self"]:
            for what in ("cmdline", "environ"):
                try:
                    found[f"{pid}/{what}"] = Path(f"/proc/{pid}/{what}").read_bytes().decode(errors="replace")
                except OSError as e:
                    found[f"{pid}/{what}"] = f"unreadable: {e}"
        return {"proc": found}


class FolderSnooper(_Snooper):
    """Reads results folders being written (run.json, parts) under the working folder and the temporary folder."""

    def snoop(self) -> dict:
        found = []
        seen = 0
        for root in {os.getcwd(), tempfile.gettempdir(), os.environ.get("SNOOP_ROOT", os.getcwd())}:
            for folder, subfolders, names in os.walk(root):
                subfolders[:] = [s for s in subfolders if not s.startswith((".", "__")) and s not in ("proc", "sys")]
                for name in names:
                    if name == "run.json" or (name.startswith("trials-") and name.endswith(".jsonl")):
                        seen += 1
                        try:
                            found.append(Path(folder, name).read_text()[:200_000])
                        except OSError:
                            pass
                if seen > 200:
                    break
        return {"files": found}


class SuiteRegenerator(_Snooper):
    """Regenerates the installed suites and looks for the trial whose agent seed is its own (under seed 0, the
    board's seed): then it knows the map - of the *public* suites."""

    def snoop(self) -> dict:
        from icrl_bench.protocol.suites import SUITES

        maps = []
        for suite in SUITES.values():
            if suite.name.startswith("stitching"):
                continue
            for trial in range(suite.n_trials):
                if suite.trial_seeds(0, trial)[1] == self.info.seed:
                    maps += ["/".join(t.rows) for t in suite.trial_tasks(trial)]
        return {"maps": maps}


class MemoryScanner(_Snooper):
    """Reads the memory of every other process it can see (/proc/PID/mem, the writable anonymous mappings) for a
    secret that starts with `SECRET_PREFIX`: root reads any process's memory, non-dumpable or not."""

    def snoop(self) -> dict:
        found, scanned = set(), []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                maps = Path(f"/proc/{entry}/maps").read_text().splitlines()
                with open(f"/proc/{entry}/mem", "rb", buffering=0) as mem:
                    scanned.append(int(entry))
                    for line in maps:
                        fields = line.split()
                        if "rw" not in fields[1] or (len(fields) > 5 and not fields[5].startswith("[heap")):
                            continue  # anonymous writable memory and the heap: where Python keeps its objects
                        lo, hi = (int(x, 16) for x in fields[0].split("-"))
                        if hi - lo > 256 << 20:
                            continue
                        try:
                            mem.seek(lo)
                            chunk = mem.read(hi - lo)
                        except (OSError, ValueError, OverflowError):
                            continue
                        at = chunk.find(SECRET_PREFIX)
                        while at >= 0:
                            found.add(chunk[at : at + len(SECRET_PREFIX) + 32].decode(errors="replace"))
                            at = chunk.find(SECRET_PREFIX, at + 1)
            except OSError:
                continue
        return {"secrets": sorted(found), "scanned": scanned}


class PthPlanter(_Snooper):
    """Writes a .pth file into every site-packages folder it finds: Python runs such a file's import lines in every
    interpreter started afterwards (the verifier's next run, its signer). This one holds a comment only."""

    def snoop(self) -> dict:
        import site
        import sysconfig

        folders = {*site.getsitepackages(), sysconfig.get_paths()["purelib"],
                   f"/usr/local/lib/python{sys.version_info[0]}.{sys.version_info[1]}/dist-packages"}
        planted = []
        for folder in sorted(folders):
            path = Path(folder, "icrl_bench_planted_by_test.pth")
            try:
                Path(folder).mkdir(parents=True, exist_ok=True)
                path.write_text("# planted by tests/hostile_agents.py:PthPlanter (harmless: a comment)\n")
                planted.append(str(path))
            except OSError:
                pass
        return {"planted": planted}


class AncestorScanner(_Snooper):
    """Walks up its parent processes and reads each one's environment and command line: an ``ICRL_BENCH_*``
    variable scrubbed from its own environment is still in the initial environment of the processes above it."""

    def snoop(self) -> dict:
        found, pid = {}, os.getppid()
        for _ in range(8):
            if pid <= 0:
                break
            for what in ("environ", "cmdline"):
                try:
                    found[f"{pid}/{what}"] = Path(f"/proc/{pid}/{what}").read_bytes().decode(errors="replace")
                except OSError as e:
                    found[f"{pid}/{what}"] = f"unreadable: {e}"
            try:
                pid = int(Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[1])
            except (OSError, ValueError, IndexError):
                break
        return {"proc": found}


class FileReader(_Snooper):
    """Reads the file named by its ``path`` option (a key file whose path it learnt from a command line)."""

    def __init__(self, report: str, path: str) -> None:
        super().__init__(report)
        self.path = path

    def snoop(self) -> dict:
        try:
            return {"text": Path(self.path).read_text(), "error": None}
        except OSError as e:
            return {"text": None, "error": str(e)}


class Prober(_Snooper):
    """Reports who it runs as, whether it can write `path`, reach a server of the host on 127.0.0.1:`port`, and
    how many processes it sees."""

    def __init__(self, report: str, path: str, port: int) -> None:
        super().__init__(report)
        self.path, self.port = path, int(port)

    def snoop(self) -> dict:
        import socket

        try:
            Path(self.path).write_text("x")
            wrote = "wrote"
        except OSError as e:
            wrote = str(e)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                network = "connected"
        except OSError as e:
            network = f"refused or unreachable: {e}"
        processes = sum(name.isdigit() for name in os.listdir("/proc"))
        return {"uid": os.getuid(), "write": wrote, "network": network, "processes": processes}
