"""Cheating agents: each tries one way to reach the hidden map or the verifier's secret, and writes what it found
(JSON lines) to the file named by its ``report`` option. Used by tests/test_isolation.py."""

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
            with open(self.report, "a") as f:
                f.write(json.dumps({"agent": type(self).__name__, "pid": os.getpid(), **self.snoop()}) + "\n")
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
