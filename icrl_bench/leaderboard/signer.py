"""The signer: the one process of a verification that holds the verifier's key, for one entry, then gone.

`leaderboard verify` never reads the key itself. It starts ``python -m icrl_bench.leaderboard.signer`` with the
key's source (a file path, or its own standard input handed over unread), and asks it two things over a pipe,
JSON lines:

    verifier -> signer   {"op": "seed", "entry": {...}}     -> {"seed": hex, "key_id": hex16}
                         {"op": "sign", "block": {...}, "entry": {...}}  -> {"block": {...signed...}}   (then it exits)

The signer remembers the hash of the entry it derived a seed for and signs only that entry, once (a maintainer
verifying several entries asks for them one after the other); it exits when the verifier closes the pipe. So the
process tree that starts agents (the verifier and its sandboxed children) never holds the key: an agent
that broke out of its sandbox and read the verifier's memory would find one entry's seed, with which it could
cheat that one re-run (whose records the signer still compares), but never sign another entry. The signer makes
itself non-dumpable (other processes of a non-root user cannot read its memory) and runs outside every agent's
sandbox, which shows agents no other process.

`KeySigner` does the same in-process for a key object the caller already holds (tests, library use).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

from icrl_bench.leaderboard.signing import SigningError, derived_seed, entry_hash, key_id, load_private_key, sign_block


class KeySigner:
    """A signer around a key object in this process (what `SignerProcess` runs on its side)."""

    def __init__(self, private_key: Any) -> None:
        self._key = private_key
        self._entry: str | None = None
        self.key_id = key_id(private_key.public_key())

    def seed(self, submission: dict[str, Any]) -> bytes:
        """The secret seed of this entry's re-run; the next signature is for this entry only."""
        self._entry = entry_hash(submission)
        return derived_seed(self._key, submission)

    def sign(self, block: dict[str, Any], submission: dict[str, Any]) -> dict[str, Any]:
        """`block` signed together with the entry whose seed was derived last (any other entry is refused), once."""
        if self._entry is None or entry_hash(submission) != self._entry:
            raise SigningError("the signer signs only the entry whose seed it derived, once")
        self._entry = None
        return sign_block(block, submission, self._key)

    def close(self) -> None:
        self._key = None


class SignerProcess:
    """The verifier's side of a signer in a child process that reads the key itself.

    `key_file`: a path the signer opens, or ``-``: this process's standard input, handed to the signer unread
    (and then replaced here by /dev/null, so that nothing started later inherits it)."""

    def __init__(self, key_file: str) -> None:
        command = [sys.executable, "-m", "icrl_bench.leaderboard.signer"]
        fds: tuple[int, ...] = ()
        if key_file == "-":
            fds = (os.dup(0),)
            command += ["--key-fd", str(fds[0])]
        else:
            command += ["--key-file", os.path.abspath(key_file)]
        try:
            self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=fds,
                                         close_fds=True, start_new_session=True)  # fmt: skip
        finally:
            for fd in fds:
                os.close(fd)
            if key_file == "-":
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)  # /proc/<pid>/fd/0 of this process no longer leads to the key
                os.close(devnull)
        self.key_id = str(self._answer()["key_id"])

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # its answer (an error, or end of file) says why
        return self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise SigningError(f"the signer process ended (status {code}) without answering")
        reply = json.loads(line)
        if "error" in reply:
            raise SigningError(str(reply["error"]))
        return reply

    def seed(self, submission: dict[str, Any]) -> bytes:
        return bytes.fromhex(str(self._ask({"op": "seed", "entry": submission})["seed"]))

    def sign(self, block: dict[str, Any], submission: dict[str, Any]) -> dict[str, Any]:
        return dict(self._ask({"op": "sign", "block": block, "entry": submission})["block"])

    def __enter__(self) -> SignerProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """End the signer (it forgets the key with its process)."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def _serve(signer: KeySigner) -> None:
    """Answer `seed` and `sign` requests on stdin/stdout until the verifier closes the pipe."""
    for line in sys.stdin:
        try:
            message = json.loads(line)
            if message.get("op") == "seed":
                reply: dict[str, Any] = {"seed": signer.seed(message["entry"]).hex()}
            elif message.get("op") == "sign":
                reply = {"block": signer.sign(message["block"], message["entry"])}
            else:
                reply = {"error": f"unknown request {str(message.get('op'))[:40]!r}"}
        except (SigningError, ValueError, KeyError, TypeError) as e:
            reply = {"error": str(e)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    from icrl_bench.protocol.isolation import forbid_inspection

    forbid_inspection()
    parser = argparse.ArgumentParser(description="the verifier's signer (started by `leaderboard verify`)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--key-file")
    source.add_argument("--key-fd", type=int)
    args = parser.parse_args(argv)
    try:
        if args.key_fd is not None:
            with os.fdopen(args.key_fd, "rb") as f:
                pem, where = f.read(), "standard input"
        else:
            try:
                with open(args.key_file, "rb") as f:
                    pem, where = f.read(), args.key_file
            except OSError as e:
                raise SigningError(f"cannot read the key file {args.key_file}: {e}") from None
        signer = KeySigner(load_private_key(pem, where))
    except SigningError as e:
        sys.stdout.write(json.dumps({"error": str(e)}) + "\n")
        return 2
    sys.stdout.write(json.dumps({"ok": True, "key_id": signer.key_id}) + "\n")
    sys.stdout.flush()
    _serve(signer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
