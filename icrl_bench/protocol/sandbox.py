"""The sandbox an isolated agent's child process runs in (`protocol.isolation`): bubblewrap, what Linux ships.

A child process alone (`--isolate`) keeps the agent away from the runner's Python objects, but not from the
operating system: as the same user it could read other processes' memory (root ignores the non-dumpable flag),
plant a ``.pth`` file that runs in every later Python, or read a key file. `Sandbox.wrap` starts the child as

    bwrap --ro-bind / / --tmpfs /root --tmpfs /home --tmpfs /tmp ... --proc /proc --dev /dev
          --unshare-pid --unshare-net --unshare-ipc --unshare-uts --unshare-cgroup-try
          --die-with-parent --new-session --setenv HOME /tmp --chdir CWD [--ro-bind P P ...]
          -- setpriv --reuid 65534 --regid 65534 --clear-groups --inh-caps=-all --bounding-set=-all python -m ...

so that the agent:

- sees the filesystem read-only (a private tmpfs at /tmp, /var/tmp, /run, /dev/shm), with the home folders
  (/root, /home) empty except what it needs re-bound read-only: the interpreter, the virtual environment, every
  folder on the child's import path, the working folder, the agent file's folder and the maintainer's
  ``--sandbox-bind`` paths;
- runs in new PID, network (loopback only, nothing listening), IPC, UTS and mount namespaces: no other process
  of the machine is visible (not the verifier, not its parents), nothing outside is reachable;
- as root: runs as uid/gid 65534 (nobody) with no capabilities and no_new_privs, so files that only root may
  read (a key file of mode 600) stay closed even where visible; as another user: in a user namespace of its own
  (``--unshare-user --disable-userns --cap-drop ALL``), still that user to the kernel, so files that user can
  read are open where visible (keep a key outside the bound folders: README, "What to trust");
- dies with its parent (``--die-with-parent``; the PID namespace ends with it), in a session of its own.

`find_sandbox()` says whether bubblewrap can start here (it runs ``true`` in such a sandbox once); where it
cannot, `verify` refuses to sign unless the maintainer passes ``--no-sandbox``, and the verification block
records which sandbox ran (`Sandbox.describe`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

NOBODY = 65534
HIDDEN = ("/root", "/home")  # home folders: empty in the sandbox but for what is bound back
PRIVATE = ("/tmp", "/var/tmp", "/run", "/dev/shm")  # private tmpfs of the agent's own


class SandboxError(RuntimeError):
    """No sandbox can start where one is required; the message says what to install or pass."""


@dataclasses.dataclass(frozen=True)
class Sandbox:
    """How an agent's child process is confined. ``kind``: ``bwrap`` (bubblewrap), ``prefix`` (a maintainer's
    command such as a container runtime, `--isolate-with`) or ``none`` (a child process only)."""

    kind: str
    binds: tuple[str, ...] = ()  # extra read-only paths (`--sandbox-bind`)
    prefix: str = ""
    version: str = ""

    def describe(self) -> str:
        """One line for the verification block and the board."""
        if self.kind == "bwrap":
            who = f"uid {NOBODY}, no capabilities" if os.geteuid() == 0 else "a user namespace without capabilities"
            return (f"bubblewrap {self.version}: pid, net, ipc, uts and mount namespaces, read-only filesystem, "
                    f"private /tmp, {who}")  # fmt: skip
        if self.kind == "prefix":
            return f"started through: {self.prefix}"
        return "none: a child process only"

    def wrap(self, argv: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
        """The command that runs `argv` (the child's interpreter and arguments) in this sandbox; `extra`: more
        paths to show read-only (the agent file's folder)."""
        if self.kind == "none":
            return list(argv)
        if self.kind == "prefix":
            import shlex

            return shlex.split(self.prefix) + ["python", *argv[1:]]
        if os.geteuid() == 0:
            for folder in extra:
                _check_readable_by_others(folder)
        return bwrap_command(argv, [*self.binds, *extra])


def _check_readable_by_others(folder: str) -> None:
    """As root the agent runs as nobody: its own folder must be open to others, or it cannot load its code."""
    mode = os.stat(folder).st_mode
    if not (mode & 0o005 == 0o005):
        raise SandboxError(f"the agent's folder {folder} is not readable by others (mode {oct(mode & 0o777)}), and the "
                           f"sandbox runs the agent as uid {NOBODY}: chmod o+rx it (and o+r its files)")  # fmt: skip


def _needed_paths(extra: Sequence[str]) -> list[str]:
    """Folders the child needs that lie under a hidden or private folder: the interpreter, the environment, the
    import path, the working folder, `extra`. Each as its real path (links resolved)."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
                  os.getcwd(), *sys.path, *extra]  # fmt: skip
    out: list[str] = []
    for path in candidates:
        if not path:
            continue
        real = os.path.realpath(path)
        if os.path.exists(real) and real.startswith(tuple(h + "/" for h in HIDDEN + PRIVATE)):
            out.append(real)
    kept: list[str] = []
    for path in sorted(set(out), key=len):  # a folder inside one already bound comes along with it
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def bwrap_command(argv: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """The bubblewrap command line for `argv` (see the module docstring)."""
    command = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for folder in HIDDEN:
        if os.path.isdir(folder):
            command += ["--perms", "0755", "--tmpfs", folder]
    for folder in PRIVATE:
        if folder != "/dev/shm" and os.path.isdir(folder):
            command += ["--perms", "1777", "--tmpfs", folder]  # the agent's own scratch space, as /tmp always is
    made: set[str] = set()
    for path in _needed_paths(extra):
        # The folders on the way are made open (0755) and empty: bubblewrap would copy their modes, and a private
        # folder (pytest's are 0700) would close the path to the agent.
        root = next(r for r in HIDDEN + PRIVATE if path.startswith(r + "/"))
        parts = Path(path).relative_to(root).parts[:-1]
        for k in range(1, len(parts) + 1):
            folder = os.path.join(root, *parts[:k])
            if folder not in made:
                made.add(folder)
                command += ["--perms", "0755", "--dir", folder]
        command += ["--ro-bind", path, path]
    command += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--die-with-parent", "--new-session", "--setenv", "HOME", "/tmp", "--chdir", os.getcwd()]  # fmt: skip
    if os.geteuid() == 0:  # drop root for real: uid 65534 on the host, not a mapped root
        return command + ["--", "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                          "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", *argv]  # fmt: skip
    return command + ["--unshare-user", "--disable-userns", "--cap-drop", "ALL", "--", *argv]


@functools.lru_cache(maxsize=1)
def bwrap_status() -> tuple[bool, str]:
    """(whether bubblewrap starts a sandbox here, its version or why not), checked once by running ``true``."""
    if shutil.which("bwrap") is None:
        return False, "bubblewrap is not installed (apt-get install bubblewrap)"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return False, "setpriv (util-linux) is missing: it drops root inside the sandbox"
    try:
        version = subprocess.run(["bwrap", "--version"], capture_output=True, text=True, timeout=10).stdout.split()[-1]
        done = subprocess.run(bwrap_command(["true"]), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired, IndexError) as e:
        return False, f"bubblewrap did not start: {e}"
    if done.returncode != 0:
        return False, f"bubblewrap could not start a sandbox here: {done.stderr.strip()[-300:]}"
    return True, version


def find_sandbox(binds: Sequence[str] = ()) -> Sandbox | None:
    """A bubblewrap sandbox where one starts here, else None (`bwrap_status` says why)."""
    ok, version = bwrap_status()
    return Sandbox("bwrap", tuple(str(Path(b).resolve()) for b in binds), version=version) if ok else None


def choose_sandbox(isolate_with: str | None = None, no_sandbox: bool = False, binds: Sequence[str] = (),
                   required: bool = True) -> Sandbox:  # fmt: skip
    """The sandbox of an isolated run: the maintainer's prefix, none when asked for explicitly, else bubblewrap;
    where bubblewrap cannot start, a `SandboxError` if `required`, else no sandbox."""
    if isolate_with:
        return Sandbox("prefix", prefix=isolate_with)
    if no_sandbox:
        return Sandbox("none")
    found = find_sandbox(binds)
    if found is not None:
        return found
    if required:
        raise SandboxError(f"no sandbox can start here ({bwrap_status()[1]}); install bubblewrap, run in a container "
                           "(--isolate-with), or pass --no-sandbox to run the agent in a plain child process "
                           "(the entry then shows that it was verified without a sandbox)")  # fmt: skip
    return Sandbox("none")
