"""Mutations of a valid submission, each of which the validator must reject (a fuzzer for `validate`), and
attacks on a verified board entry (`board_mutants`, `write_odd_file`).

Kinds: a field dropped or given the wrong type (anywhere: top level, suite, record, episode, summary); a summary
number edited; a record number edited; a trial removed or duplicated; a suite's hash, version or trial count
changed; and impossible episodes whose suite summary is then *recomputed*, so that only the record-level checks
can catch them (a careful cheater would recompute it too).
"""

from __future__ import annotations

import copy
import random
from typing import Any, Callable, Iterator

from icrl_bench.protocol.metrics import suite_metrics
from icrl_bench.protocol.records import TrialRecord
from icrl_bench.protocol.suites import SUITES


def _leaves(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, path + (i,))
    else:
        yield path, node


def _get(node: Any, path: tuple) -> Any:
    for p in path:
        node = node[p]
    return node


def _recompute(sub: dict, suite: str) -> None:
    records = sorted((TrialRecord.from_dict(r) for r in sub["results"]["records"][suite]), key=lambda r: r.trial)
    sub["results"]["summary"][suite] = suite_metrics(records, SUITES[suite].change_after)


def _pick_episode(sub: dict, rng: random.Random) -> tuple[str, dict, dict]:
    suite = rng.choice(list(sub["results"]["records"]))
    record = rng.choice(sub["results"]["records"][suite])
    return suite, record, rng.choice(record["episodes"])


def _drop_field(sub: dict, rng: random.Random) -> str:
    containers = [(p, n) for p, n in _containers(sub["results"], ("results",)) if isinstance(n, dict) and n]
    path, node = rng.choice(containers)
    key = rng.choice(list(node))
    del node[key]
    return f"dropped {'/'.join(map(str, path + (key,)))}"


def _containers(node: Any, path: tuple) -> Iterator[tuple[tuple, Any]]:
    if isinstance(node, (dict, list)):
        yield path, node
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in items:
            yield from _containers(v, path + (k,))


def _wrong_type(sub: dict, rng: random.Random) -> str:
    path, value = rng.choice(list(_leaves(sub["results"])))
    parent = _get(sub["results"], path[:-1])
    parent[path[-1]] = "not a number" if not isinstance(value, str) else 12345
    return f"retyped {'/'.join(map(str, path))}"


def _edit_summary(sub: dict, rng: random.Random) -> str:
    numeric = [(p, v) for p, v in _leaves(sub["results"]["summary"]) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    path, value = rng.choice(numeric)
    _get(sub["results"]["summary"], path[:-1])[path[-1]] = value + rng.choice([0.01, -0.01, 1, 0.5])
    return f"edited summary {'/'.join(map(str, path))}"


def _edit_record(sub: dict, rng: random.Random) -> str:
    _, record, episode = _pick_episode(sub, rng)
    field = rng.choice(["success", "steps", "start", "shortest", "optimal", "env_seed", "agent_seed", "forced_random"])
    if field in ("env_seed", "agent_seed"):
        record[field] += 1
    elif field == "success":
        episode["success"] = 1 - episode["success"]
    else:
        episode[field] += rng.choice([1, 2]) if field != "optimal" else 0.25
    return f"edited record field {field}"


def _remove_trial(sub: dict, rng: random.Random) -> str:
    suite = rng.choice(list(sub["results"]["records"]))
    sub["results"]["records"][suite].pop(rng.randrange(len(sub["results"]["records"][suite])))
    return "removed a trial"


def _duplicate_trial(sub: dict, rng: random.Random) -> str:
    suite = rng.choice(list(sub["results"]["records"]))
    records = sub["results"]["records"][suite]
    records.append(copy.deepcopy(rng.choice(records)))
    return "duplicated a trial"


def _suite_identity(sub: dict, rng: random.Random) -> str:
    suite = rng.choice(list(sub["results"]["suites"]))
    field = rng.choice(["hash", "version", "trials", "n_episodes"])
    described = sub["results"]["suites"][suite]
    described[field] = described[field] + 1 if field != "hash" else "0" * 16
    return f"changed suite {field}"


def _impossible_episode(sub: dict, rng: random.Random) -> str:
    suite, record, episode = _pick_episode(sub, rng)
    task = SUITES[suite].tasks[record["trial"]][0]
    kind = rng.choice(["too_fast", "early_truncation", "bad_start", "too_long", "seed", "task"])
    if kind == "too_fast" and episode["shortest"] > 1:
        episode.update(success=1, truncated=False, steps=episode["shortest"] - 1)
    elif kind == "early_truncation":
        episode.update(success=0, truncated=True, steps=max(1, min(episode["steps"], task.max_steps - 1)))
    elif kind == "bad_start":
        others = [t for t in range(task.n_tiles) if t != episode["start"] and task.tile(t) in "SF"]
        episode["start"] = rng.choice(others) if others else episode["start"] + 1
    elif kind == "seed":
        record["env_seed"] += 1
    elif kind == "task":
        record["task_ids"][0] = "f" * 16
    else:
        episode.update(steps=task.max_steps + 1)
    _recompute(sub, suite)
    return f"impossible episode ({kind}), summary recomputed"


MUTATIONS: dict[str, Callable[[dict, random.Random], str]] = {
    "drop_field": _drop_field,
    "wrong_type": _wrong_type,
    "edit_summary": _edit_summary,
    "edit_record": _edit_record,
    "remove_trial": _remove_trial,
    "duplicate_trial": _duplicate_trial,
    "suite_identity": _suite_identity,
    "impossible_episode": _impossible_episode,
}


def mutants(submission: dict, n: int, seed: int = 0) -> Iterator[tuple[str, str, dict]]:
    """`n` (kind, description, mutated copy) triples, cycling through the kinds; none equals the original."""
    rng = random.Random(seed)
    kinds = list(MUTATIONS)
    made = 0
    while made < n:
        kind = kinds[made % len(kinds)]
        mutant = copy.deepcopy(submission)
        try:
            description = MUTATIONS[kind](mutant, rng)
        except (KeyError, TypeError, IndexError, ValueError):  # the mutation hit a field it cannot change
            continue
        if mutant != submission:
            made += 1
            yield kind, description, mutant


# ---------------------------------------------------------------------------------------------------------------
# Attacks on a verified board entry: each must make the entry invalid, except removing the verification block,
# which only withdraws a claim (the entry is then listed as unverified).

INJECTIONS = (
    "javascript&colon;alert(1)", "/\\evil.example/x", "https://ok/)[pwn](javascript:alert(1))", "javascript:alert(1)",
    "//evil.example/x", "https://ok/<img src=x onerror=alert(1)>", "data:text/html,<script>alert(1)</script>",
)  # fmt: skip
BAD_TEXT = ("evil\u202egnp", "a\nb", "x" * 100_000, "zero\u200bwidth", "tab\tbell\x07")


def _block_edit(sub: dict, rng: random.Random) -> str:
    leaves = [(p, v) for p, v in _leaves(sub["verification"]) if p[0] not in ("signature",)]
    path, value = rng.choice(leaves)
    if isinstance(value, bool):
        new: Any = not value
    elif isinstance(value, (int, float)):
        new = value + rng.choice([1, -1, 0.001])
    elif isinstance(value, str):
        new = rng.choice(["2099-01-01", value[::-1], value + "0", "<img src=x onerror=alert(1)>"])
    else:
        new = "x"
    _get(sub["verification"], path[:-1])[path[-1]] = new
    return f"verification/{'/'.join(map(str, path))} edited"


def _signature_edit(sub: dict, rng: random.Random) -> str:
    signature = sub["verification"]["signature"]
    i = rng.randrange(len(signature) - 2)
    sub["verification"]["signature"] = signature[:i] + ("A" if signature[i] != "A" else "B") + signature[i + 1 :]
    return f"signature character {i} changed"


def _own_key(sub: dict, rng: random.Random) -> str:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from icrl_bench.leaderboard.signing import sign_block

    block = {k: v for k, v in sub["verification"].items() if k not in ("key_id", "entry_hash", "signature")}
    block["verified"] = True
    sub["verification"] = sign_block(block, sub, ed25519.Ed25519PrivateKey.generate())
    return "re-signed with the submitter's own key"


def _privilege_flip(sub: dict, rng: random.Random) -> str:
    sub["results"]["agent"]["privileged"] = not sub["results"]["agent"]["privileged"]
    return "results/agent/privileged flipped"


def _meta_edit(sub: dict, rng: random.Random) -> str:
    key = rng.choice(["name", "authors", "code_url", "model_size", "training_data", "compute", "open_weights"])
    sub["meta"][key] = {"code_url": "https://example.org/other", "model_size": 8_000_000_000,
                        "open_weights": not sub["meta"].get("open_weights")}.get(key, f"{sub['meta'].get(key)} (official)")  # fmt: skip
    return f"meta/{key} edited after verification"


def _injection(sub: dict, rng: random.Random) -> str:
    if rng.random() < 0.5:
        key, value = rng.choice(["code_url", "paper_url"]), rng.choice(INJECTIONS)
    else:
        key, value = rng.choice(["name", "authors", "compute"]), rng.choice(BAD_TEXT)
    sub["meta"][key] = value
    sub["verification"] = None  # even without a claim to protect, the entry is refused
    return f"meta/{key} = {value[:40]!r}"


def _reordered_copy(sub: dict, rng: random.Random) -> str:
    for records in sub["results"]["records"].values():
        rng.shuffle(records)
    sub["results"]["records"] = dict(reversed(list(sub["results"]["records"].items())))
    sub["results"]["agent"].update(privileged=not sub["results"]["agent"]["privileged"], label="another", name="x:Y")
    sub["meta"]["name"] = f"new entry {rng.randrange(10**6)}"
    sub["verification"] = None
    return "the same records reordered, renamed, privilege flipped: a duplicate"


def _remove_claim(sub: dict, rng: random.Random) -> str:
    sub["verification"] = None
    return "verification removed (unverified, not invalid)"


BOARD_MUTATIONS: dict[str, Callable[[dict, random.Random], str]] = {
    "block_edit": _block_edit,
    "signature_edit": _signature_edit,
    "own_key": _own_key,
    "privilege_flip": _privilege_flip,
    "meta_edit": _meta_edit,
    "injection": _injection,
    "reordered_copy": _reordered_copy,
    "remove_claim": _remove_claim,
}
ODD_FILES = ("directory", "fifo", "link_to_dev_zero", "huge_integer", "oversized")


def board_mutants(submission: dict, n: int, seed: int = 0) -> Iterator[tuple[str, str, dict]]:
    """`n` (kind, description, mutated copy) triples of a *verified* board entry, cycling through the kinds."""
    rng = random.Random(seed)
    kinds = list(BOARD_MUTATIONS)
    for made in range(n):
        kind = kinds[made % len(kinds)]
        mutant = copy.deepcopy(submission)
        yield kind, BOARD_MUTATIONS[kind](mutant, rng), mutant


def write_odd_file(path: Any, kind: str) -> None:
    """Put an odd file at `path` (a Path): what a hostile pull request could add to ``submissions/``."""
    import os

    from icrl_bench.leaderboard.files import MAX_FILE_BYTES

    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "link_to_dev_zero":
        path.symlink_to("/dev/zero")
    elif kind == "huge_integer":
        path.write_text('{"submission_schema": 1, "results": {"seed": ' + "7" * 5000 + "}}")
    else:
        with open(path, "wb") as f:
            f.truncate(MAX_FILE_BYTES + 1)
