"""Reading and writing board files safely: regular files only, bounded sizes, never through a symbolic link.

A board is a folder that strangers send pull requests to, so every file is treated as hostile: a submission that
is a directory, a FIFO, a device or a symlink is refused *before* it is opened (a FIFO would hang a reader, a
link to ``/dev/zero`` would exhaust memory); files over `MAX_FILE_BYTES` are refused unread; JSON numbers are
bounded; and the board's own outputs (``README.md``, ``index.html``, ``submissions/*.json``) are written through
a temporary file and ``os.replace`` only when neither they nor any folder between the board and them is a link.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 20_000_000  # a whole-suite entry is about 3 MB
MAX_INTEGER_DIGITS = 20  # JSON integers: |n| < 10**20 (seeds are 32-bit, counts far smaller)


class BoardFileError(ValueError):
    """A board file that cannot be read or written safely; the message names it and says what to do."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The content of a regular file of at most `limit` bytes (not a link, FIFO, device or directory)."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise BoardFileError(f"{path}: no such file") from None
    except OSError as e:
        raise BoardFileError(f"{path}: cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise BoardFileError(f"{path} is {_kind(info.st_mode)}: give a regular file")
    if info.st_size > limit:
        raise BoardFileError(f"{path} is {info.st_size:,} bytes, over the limit of {limit:,}")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)  # swapped for a link or FIFO since the lstat: O_NOFOLLOW/O_NONBLOCK hold
    except OSError as e:
        raise BoardFileError(f"{path}: cannot be opened safely ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise BoardFileError(f"{path} changed into something that is not a regular file while being read")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise BoardFileError(f"{path} is over the limit of {limit:,} bytes")
    return data


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    repeated = sorted({k for k, _ in pairs if k in seen or seen.add(k)})  # linear: files may hold 10^6 keys
    if repeated:
        raise BoardFileError(f"duplicate key(s) {repeated} in a JSON object")
    return dict(pairs)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise BoardFileError(f"an integer of {len(text)} digits (at most {MAX_INTEGER_DIGITS} are allowed)")
    return int(text)


def _not_finite(value: str) -> Any:
    raise BoardFileError(f"{value} is not a number JSON allows")


def read_json(path: str | Path) -> Any:
    """Strict JSON from a safe file (`read_bytes`): an error naming the file for anything unreadable, duplicate
    keys, NaN/Infinity or an over-long integer."""
    data = read_bytes(path)
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys, parse_constant=_not_finite,
                          parse_int=_bounded_int)  # fmt: skip
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, BoardFileError, ValueError) as e:
        raise BoardFileError(f"{path}: not valid JSON ({type(e).__name__}: {e})") from None


def _check_inside(board: Path, target: Path) -> None:
    """`target` is inside `board`, and neither it nor any folder on the way (the board included) is a link."""
    board_abs = Path(os.path.abspath(board))
    target_abs = Path(os.path.abspath(target))
    if board_abs not in target_abs.parents:
        raise BoardFileError(f"{target} is outside the board folder {board}")
    parts = target_abs.relative_to(board_abs).parts
    chain = [board_abs] + [board_abs.joinpath(*parts[: i + 1]) for i in range(len(parts))]
    for here in chain:
        if os.path.islink(here):
            raise BoardFileError(f"{here} is a symbolic link: board files are never written through links; remove it")
    for here in chain[:-1]:
        if os.path.exists(here) and not os.path.isdir(here):
            raise BoardFileError(f"{here} is not a folder")
    if os.path.exists(target_abs) and not os.path.isfile(target_abs):
        raise BoardFileError(f"{target} exists and is not a regular file; remove it")


def write_board_file(board: str | Path, target: str | Path, text: str, exclusive: bool = False) -> Path:
    """Write `text` to `target` inside `board` atomically (temporary file, then rename), never through a link.

    `exclusive`: refuse if `target` exists (submissions are never overwritten).
    """
    board, target = Path(board), Path(target)
    _check_inside(board, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _check_inside(board, target)  # mkdir may have raced a link into place
    if exclusive and os.path.lexists(target):
        raise BoardFileError(f"{target} already exists: entries are never overwritten; choose another name")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, target)  # fails if the target appeared meanwhile: never overwrite
            os.unlink(tmp)
        else:
            os.replace(tmp, target)
    except FileExistsError:
        os.unlink(tmp)
        raise BoardFileError(f"{target} already exists: entries are never overwritten; choose another name") from None
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return target
