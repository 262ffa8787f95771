"""Submissions: a results.json plus metadata, checked and written to ``leaderboard/submissions/<slug>.json``.

A submission file is ``{"submission_schema": 1, "meta": {...}, "results": {...}, "verification": null | {...}}``
(documented in ``leaderboard/README.md``). Nothing is ever overwritten: a second submission of the same results
(same records, whatever the name) or of an existing slug is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

from icrl_bench.leaderboard.validate import validate_results
from icrl_bench.protocol.suites import SUITES

SUBMISSION_SCHEMA = 1
META_FIELDS: dict[str, tuple[Any, bool]] = {  # field -> (types, required)
    "name": (str, True),
    "authors": (str, True),
    "code_url": ((str, type(None)), False),
    "paper_url": ((str, type(None)), False),
    "model_size": ((str, int, type(None)), False),
    "training_data": ((str, type(None)), False),
    "compute": ((str, type(None)), False),
    "open_weights": ((bool, type(None)), False),
}
VERIFICATION_FIELDS = ("verified", "date", "seed_sha256", "trials", "test", "suites", "agent", "results_hash", "signature")
URL_FIELDS = ("code_url", "paper_url")
# Leaderboard entries are comparable only on whole suites under one evaluation seed (no seed shopping).
BOARD_SEED = 0


class SubmissionError(ValueError):
    """A submission that cannot be accepted; the message lists every problem."""


def slugify(name: str) -> str:
    """The file name of an entry: lower-case letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise SubmissionError(f"the name {name!r} gives an empty file name: use letters or digits")
    return slug[:80]


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise SubmissionError(f"duplicate key(s) {repeated} in a JSON object")
    return dict(pairs)


def _finite(value: str) -> Any:
    raise SubmissionError(f"{value} is not a number JSON allows")


def read_json(path: str | Path) -> Any:
    """Strict JSON from a file: an error naming the file for anything unreadable, duplicate keys or NaN."""
    try:
        return json.loads(Path(path).read_text(), object_pairs_hook=_no_duplicate_keys, parse_constant=_finite)
    except FileNotFoundError:
        raise SubmissionError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, SubmissionError) as e:
        raise SubmissionError(f"{path}: not valid JSON ({type(e).__name__}: {e})") from None


def load_meta(path: str | Path) -> dict[str, Any]:
    """Metadata from JSON, or from YAML of flat ``key: value`` lines (no PyYAML needed)."""
    if str(path).endswith(".json"):
        data = read_json(path)
        if not isinstance(data, dict):
            raise SubmissionError(f"{path}: the metadata must be a JSON object")
        return data
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise SubmissionError(f"{path}: cannot read the metadata ({e})") from None
    data: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep or line.startswith((" ", "\t")) or not key.strip():
            raise SubmissionError(f"{path}, line {number}: use flat 'key: value' lines (or a .json file)")
        key, value = key.strip(), value.strip()
        if value[:1] in ("'", '"'):  # a quoted string: everything up to the closing quote, '#' included
            end = value.find(value[0], 1)
            if end < 0:
                raise SubmissionError(f"{path}, line {number}: unclosed quote")
            parsed: Any = value[1:end]
        else:
            value = value.split(" #")[0].strip()
            if value in ("", "null", "~"):
                parsed = None
            elif value in ("true", "false"):
                parsed = value == "true"
            elif re.fullmatch(r"-?\d+", value):
                parsed = int(value)
            else:
                parsed = value
        if key in data:
            raise SubmissionError(f"{path}, line {number}: '{key}' is given twice")
        data[key] = parsed
    return data


def validate_meta(meta: Any, file: str) -> list[str]:
    """Every problem of a submission's metadata (required fields, types, one-line text, safe links)."""
    if not isinstance(meta, dict):
        return [f"{file}: 'meta' must be an object"]
    problems = []
    for key, (types, required) in META_FIELDS.items():
        if key not in meta:
            if required:
                problems.append(f"{file}: meta field '{key}' is required")
        elif not isinstance(meta[key], types) or (types is str and not meta[key].strip()):
            problems.append(f"{file}: meta field '{key}' has the wrong type or is empty ({meta[key]!r})")
        elif isinstance(meta[key], str) and ("\n" in meta[key] or "\r" in meta[key]):
            problems.append(f"{file}: meta field '{key}' must be one line")
        elif key in URL_FIELDS and meta[key] is not None and not _safe_link(meta[key]):
            problems.append(f"{file}: meta field '{key}' must be an http(s) URL or a relative path, got {meta[key]!r}")
    for key in set(meta) - set(META_FIELDS):
        problems.append(f"{file}: unknown meta field '{key}' (allowed: {', '.join(META_FIELDS)})")
    return problems


def _safe_link(url: str) -> bool:
    """http(s) URLs, or relative paths without a scheme (no ``javascript:`` or ``data:`` links on the page)."""
    if re.match(r"^https?://[^\s<>\"']+$", url):
        return True
    return ":" not in url.split("/")[0] and not re.search(r"[\s<>\"']", url) and not url.startswith("//")


def records_hash(results: dict[str, Any]) -> str:
    """Content hash of the records and seed (agent names and wall times excluded): equal for any re-submission."""
    records = {
        s: [{k: v for k, v in r.items() if k != "wall_time"} for r in recs if isinstance(r, dict)]
        if isinstance(recs, list) else recs
        for s, recs in results.get("records", {}).items()
    }  # fmt: skip
    payload = {"seed": results.get("seed"), "records": records}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def signature(secret: str, results_hash: str, agent: dict[str, Any]) -> str:
    """HMAC-SHA256, keyed by the verifier's secret, of the results hash and the agent spec re-run."""
    message = json.dumps({"results_hash": results_hash, "agent": agent}, sort_keys=True).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_problems(verification: dict[str, Any], secret: str, file: str) -> list[str]:
    """With the verifier's secret: is this block really the verifier's? (Blocks of other secrets are skipped.)"""
    if hashlib.sha256(secret.encode()).hexdigest() != verification.get("seed_sha256"):
        return []
    expected = signature(secret, verification["results_hash"], verification["agent"])
    if not hmac.compare_digest(expected, str(verification.get("signature"))):
        return [f"{file}: the verification block was not written by the holder of this secret (bad signature)"]
    return []


def board_problems(results: dict[str, Any], file: str) -> list[str]:
    """What a valid results file still needs to be a leaderboard entry: whole suites under the board's seed."""
    problems = []
    if results.get("seed") != BOARD_SEED:
        problems.append(f"{file}: leaderboard entries use evaluation seed {BOARD_SEED} (got {results.get('seed')!r}); re-run without --seed")
    for name, described in results.get("suites", {}).items():
        suite = SUITES.get(name)
        if suite is not None and isinstance(described, dict) and described.get("trials") != suite.n_trials:
            problems.append(f"{file}: suite '{name}' has {described.get('trials')} trials; entries need all {suite.n_trials}")
    return problems


def verification_problems(verification: Any, results: dict[str, Any], file: str) -> list[str]:
    """Shape of the verification block, and that it still belongs to these results."""
    if verification is None:
        return []
    if not isinstance(verification, dict) or set(verification) != set(VERIFICATION_FIELDS):
        return [f"{file}: 'verification' must be null or have exactly {list(VERIFICATION_FIELDS)}"]
    problems = []
    if not isinstance(verification["verified"], bool):
        problems.append(f"{file}: verification.verified must be true or false")
    if not isinstance(verification["suites"], dict) or set(verification["suites"]) != set(results.get("suites", {})):
        problems.append(f"{file}: verification.suites must report every suite of the results")
    if not isinstance(verification["trials"], dict):
        problems.append(f"{file}: verification.trials must map suites to trial counts")
    if verification["results_hash"] != records_hash(results):
        problems.append(f"{file}: the results changed after verification (results_hash differs): verify again")
    return problems


def validate_submission(data: Any, file: str) -> list[str]:
    """Every problem of one submission file."""
    if not isinstance(data, dict):
        return [f"{file}: not a JSON object"]
    problems = []
    if data.get("submission_schema") != SUBMISSION_SCHEMA:
        problems.append(f"{file}: submission_schema should be {SUBMISSION_SCHEMA}, got {data.get('submission_schema')!r}")
    unknown = set(data) - {"submission_schema", "meta", "results", "verification"}
    if unknown:
        problems.append(f"{file}: unknown top-level field(s) {sorted(unknown)}")
    problems += validate_meta(data.get("meta"), f"{file} (meta)")
    results = data.get("results")
    found = validate_results(results, file)
    problems += found
    if not found:
        problems += board_problems(results, file)
        problems += verification_problems(data.get("verification"), results, file)
    return problems


def validate_board(paths: list[Path], secret: str | None = None) -> list[str]:
    """Every problem of the given submission files, including duplicates among them.

    With the verifier's `secret`, verification blocks made with it must carry its signature.
    """
    problems: list[str] = []
    if not paths:
        return ["no submission files to check (is the board folder right?)"]
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            data = read_json(path)
        except SubmissionError as e:
            problems.append(str(e))
            continue
        found = validate_submission(data, str(path))
        problems += found
        if secret is not None and not found and data.get("verification"):
            problems += signature_problems(data["verification"], secret, str(path))
        if isinstance(data, dict) and isinstance(data.get("results"), dict):
            key = records_hash(data["results"])
            if key in seen:
                problems.append(f"{path}: the same results as {seen[key]} (a duplicate submission)")
            seen[key] = path
    return problems


def submit(results_path: str | Path, name: str, meta: dict[str, Any], board: str | Path = "leaderboard") -> Path:
    """Validate `results_path` with `meta` and write it as a new submission; returns the file written."""
    results = read_json(results_path)
    meta = {"name": name, **{k: v for k, v in meta.items() if k != "name"}}
    submission = {"submission_schema": SUBMISSION_SCHEMA, "meta": meta, "results": results, "verification": None}
    problems = validate_submission(submission, str(results_path))
    folder = Path(board) / "submissions"
    target = folder / f"{slugify(name)}.json"
    if target.exists():
        problems.append(f"{target} already exists: choose another --name (entries are never overwritten)")
    existing = sorted(folder.glob("*.json")) if folder.exists() else []
    key = records_hash(results) if isinstance(results, dict) else None
    for path in existing:
        try:
            other = read_json(path)
        except SubmissionError:
            continue
        if isinstance(other, dict) and isinstance(other.get("results"), dict) and records_hash(other["results"]) == key:
            problems.append(f"these results are already on the board as {path}")
    if problems:
        raise SubmissionError("the submission was not written:\n  " + "\n  ".join(problems))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "x") as f:  # "x": never overwrite, even if another submit raced this one
            f.write(json.dumps(submission, separators=(",", ":")) + "\n")
    except FileExistsError:
        raise SubmissionError(f"{target} already exists: choose another --name") from None
    return target
