"""Verification signatures: Ed25519 (the `cryptography` package, an optional extra imported only when used).

The verifier holds a private key; the board commits the matching public keys in ``leaderboard/keys/*.pem``.
A verification block is signed together with `entry_hash` (every part of the submission that affects the board:
the metadata and the whole results, records in canonical order), so anyone can check a block with no secret,
and any edit after signing - a flipped ``verified``, a changed date, report, privilege or record - breaks it.

The verifier's key never travels through a command line or an environment variable, and the process that starts
agents never reads it: the signer (`leaderboard.signer`, a short-lived child process) reads it from standard input
handed over unread (``--key-file -``, the safest) or from a file (``--key-file PATH``). The secret seed of a re-run is derived from the key and the entry (`derived_seed`), so the verifier needs no second
secret and can reproduce every verification, and a submitter cannot know it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Any

KEYS_FOLDER = "keys"  # inside the board folder: <key_id>.pem public keys
DOMAIN = "icrl-bench verification v2"


class SigningError(RuntimeError):
    """A key that cannot be read or used; the message says what to do."""


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise SigningError(
            "checking or writing verification signatures needs the 'cryptography' package: "
            "pip install 'icrl-bench[verify]'"
        ) from None
    return serialization, ed25519


def canonical_json(value: Any) -> bytes:
    """The one byte string a JSON value signs as: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_results(results: dict[str, Any]) -> dict[str, Any]:
    """`results` with each suite's records sorted by trial (key order is irrelevant after `canonical_json`)."""
    out = dict(results)
    records = results.get("records")
    if isinstance(records, dict):
        out["records"] = {
            s: sorted(recs, key=lambda r: (r.get("trial") if isinstance(r, dict) and isinstance(r.get("trial"), int) else -1,
                                           canonical_json(r)))
            if isinstance(recs, list) else recs
            for s, recs in records.items()
        }  # fmt: skip
    return out


def entry_hash(submission: dict[str, Any]) -> str:
    """SHA-256 over everything of a submission that the board shows or ranks by: meta and the whole results."""
    payload = {"meta": submission.get("meta"), "results": canonical_results(submission.get("results") or {})}
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def key_id(public_key: Any) -> str:
    """16 hex digits naming a public key (SHA-256 of its raw bytes)."""
    serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _message(block: dict[str, Any], entry: str) -> bytes:
    unsigned = {k: v for k, v in block.items() if k != "signature"}
    return canonical_json({"domain": DOMAIN, "block": unsigned, "entry_hash": entry})


def sign_block(block: dict[str, Any], submission: dict[str, Any], private_key: Any) -> dict[str, Any]:
    """`block` with ``key_id``, ``entry_hash`` and ``signature`` (base64 Ed25519) filled in."""
    block = copy.deepcopy(block)
    block["key_id"] = key_id(private_key.public_key())
    block["entry_hash"] = entry_hash(submission)
    block["signature"] = base64.b64encode(private_key.sign(_message(block, block["entry_hash"]))).decode()
    return block


def load_public_keys(board: str | Path) -> dict[str, Any]:
    """The committed public keys of a board: key id -> key (an empty dict if the folder has none)."""
    serialization, ed25519 = _crypto()
    keys = {}
    folder = Path(board) / KEYS_FOLDER
    for path in sorted(folder.glob("*.pem")) if folder.is_dir() else []:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (ValueError, OSError) as e:
            raise SigningError(f"{path}: not a PEM public key ({e})") from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise SigningError(f"{path}: not an Ed25519 public key")
        if path.stem != key_id(key):
            raise SigningError(f"{path}: a public key's file must be named by its key id ({key_id(key)}.pem)")
        keys[key_id(key)] = key
    return keys


def signature_problem(block: dict[str, Any], submission: dict[str, Any], keys: dict[str, Any]) -> str | None:
    """Why the block's signature does not hold for this submission under the committed `keys` (None: it holds)."""
    _crypto()
    from cryptography.exceptions import InvalidSignature

    public = keys.get(block.get("key_id"))
    if public is None:
        return (f"the verification block is signed with key {block.get('key_id')!r}, which is not among the "
                f"board's committed keys ({', '.join(sorted(keys)) or 'none'})")  # fmt: skip
    if block.get("entry_hash") != entry_hash(submission):
        return "the entry changed after it was verified (its hash differs from the signed one): verify it again"
    try:
        public.verify(base64.b64decode(str(block.get("signature")), validate=True), _message(block, block["entry_hash"]))
    except (InvalidSignature, ValueError):
        return "the verification block's signature does not check: it was edited after signing, or forged"
    return None


def derived_seed(private_key: Any, submission: dict[str, Any]) -> bytes:
    """The secret seed of this entry's re-run: HMAC of the entry under the private key (reproducible by its holder)."""
    serialization, _ = _crypto()
    raw = private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return hmac.new(raw, b"seed:" + entry_hash(submission).encode(), hashlib.sha256).digest()


def load_private_key(pem: bytes, where: str) -> Any:
    """An Ed25519 private key from PEM bytes; a `SigningError` naming `where` otherwise."""
    serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise SigningError(f"{where}: not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SigningError(f"{where}: not an Ed25519 private key (make one with `icrl-bench leaderboard keygen`)")
    return key


def _ancestors() -> list[tuple[int, str]]:
    """(pid, name) of this process's parent, its parent, ... up to init (Linux; empty elsewhere)."""
    out, pid = [], os.getppid()
    while pid > 1:
        try:
            line = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        name, rest = line[line.index("(") + 1 : line.rindex(")")], line[line.rindex(")") + 2 :].split()
        out.append((pid, name))
        pid = int(rest[1])
    return out


def _refuse_if_file_held_above(info: os.stat_result) -> None:
    """Standard input redirected from the key file (`< verifier.pem`) under a wrapper (`timeout`, `make`): the
    wrapper keeps that file open, and any process of the same user can open it again through /proc/<pid>/fd."""
    if not stat.S_ISREG(info.st_mode):
        return  # a pipe: drained by this process, nothing left for anyone else to read
    for pid, name in _ancestors():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                other = os.stat(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (info.st_dev, info.st_ino):
                raise SigningError(
                    f"the key file is also open in process {pid} ({name}), which started this one; any process of "
                    f"your user can read it there. Pipe the key instead: cat verifier.pem | {name} ... --key-file -"
                )


def check_key_stdin() -> None:
    """Before standard input is handed to the signer: refuse a key file that a process above this one keeps open
    (`timeout verify ... < verifier.pem`), where any process of the same user could open it again."""
    _refuse_if_file_held_above(os.fstat(0))


def generate_key(private_path: str | Path, board: str | Path) -> tuple[Path, Path]:
    """A new Ed25519 key pair: the private key at `private_path` (mode 0600, never overwritten) and the public
    key committed in ``BOARD/keys/<key_id>.pem``."""
    serialization, ed25519 = _crypto()
    key = ed25519.Ed25519PrivateKey.generate()
    private_path = Path(private_path)
    if not private_path.parent.is_dir():
        raise SigningError(f"the folder of {private_path} does not exist: make it first (mode 700)")
    folder = Path(board) / KEYS_FOLDER
    try:
        folder.mkdir(parents=True, exist_ok=True)  # before the private key: a bad board leaves no key behind
    except OSError as e:
        raise SigningError(f"cannot make the public keys' folder {folder}: {e.strerror}") from None
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise SigningError(f"{private_path} already exists: keys are never overwritten") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = key.public_key()
    public_path = folder / f"{key_id(public)}.pem"
    public_path.write_bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    trust_key(board, key_id(public))
    return private_path, public_path


def trust_key(board: str | Path, key: str, holder: str = "icrl-bench maintainers") -> None:
    """List a key id in ``BOARD/trusted_keys.json`` (what `leaderboard validate` trusts; reviewed via CODEOWNERS)."""
    import datetime as dt

    path = Path(board) / "trusted_keys.json"
    listed = json.loads(path.read_text()) if path.exists() else {"keys": {}}
    listed["keys"][key] = {"holder": holder, "added": dt.date.today().isoformat(), "status": "active"}
    path.write_text(json.dumps(listed, indent=1) + "\n")
