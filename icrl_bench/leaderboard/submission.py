"""Submissions: a results.json plus metadata, checked and written to ``leaderboard/submissions/<slug>.json``.

A submission file is ``{"submission_schema": 1, "meta": {...}, "results": {...}, "verification": null | {...}}``
(documented in ``leaderboard/README.md``). Nothing is ever overwritten: a second submission of the same results
(same records, whatever the name) or of an existing slug is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from icrl_bench.leaderboard.validate import validate_results

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
VERIFICATION_FIELDS = ("verified", "date", "seed_sha256", "trials", "test", "suites")


class SubmissionError(ValueError):
    """A submission that cannot be accepted; the message lists every problem."""


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise SubmissionError(f"the name {name!r} gives an empty file name: use letters or digits")
    return slug[:80]


def load_meta(path: str | Path) -> dict[str, Any]:
    """Metadata from JSON, or from YAML of flat ``key: value`` lines (no PyYAML needed)."""
    text = Path(path).read_text()
    if str(path).endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SubmissionError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise SubmissionError(f"{path}: the metadata must be a JSON object")
        return data
    data = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split(" #")[0].strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition(":")
        if not sep or line.startswith((" ", "\t")) or not key.strip():
            raise SubmissionError(f"{path}, line {number}: use flat 'key: value' lines (or a .json file)")
        value = value.strip()
        if value in ("", "null", "~"):
            data[key.strip()] = None
        elif value in ("true", "false"):
            data[key.strip()] = value == "true"
        elif re.fullmatch(r"-?\d+", value):
            data[key.strip()] = int(value)
        else:
            data[key.strip()] = value.strip("'\"")
    return data


def validate_meta(meta: Any, file: str) -> list[str]:
    if not isinstance(meta, dict):
        return [f"{file}: 'meta' must be an object"]
    problems = []
    for key, (types, required) in META_FIELDS.items():
        if key not in meta:
            if required:
                problems.append(f"{file}: meta field '{key}' is required")
        elif not isinstance(meta[key], types) or (types is str and not meta[key].strip()):
            problems.append(f"{file}: meta field '{key}' has the wrong type or is empty ({meta[key]!r})")
    for key in set(meta) - set(META_FIELDS):
        problems.append(f"{file}: unknown meta field '{key}' (allowed: {', '.join(META_FIELDS)})")
    return problems


def records_hash(results: dict[str, Any]) -> str:
    """Content hash of a results file's records (wall times excluded): equal for a re-submission of a run."""
    records = {
        s: [{k: v for k, v in r.items() if k != "wall_time"} for r in recs] if isinstance(recs, list) else recs
        for s, recs in results.get("records", {}).items()
    }
    payload = {"agent": results.get("agent"), "seed": results.get("seed"), "records": records}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


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
    problems += validate_meta(data.get("meta"), file)
    problems += validate_results(data.get("results"), file)
    verification = data.get("verification")
    if verification is not None:
        if not isinstance(verification, dict) or set(verification) != set(VERIFICATION_FIELDS):
            problems.append(f"{file}: 'verification' must be null or have exactly {list(VERIFICATION_FIELDS)}")
        elif not isinstance(verification["verified"], bool):
            problems.append(f"{file}: verification.verified must be true or false")
    return problems


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SubmissionError(f"{path}: not valid JSON ({e}); restore it from version control") from None


def validate_board(paths: list[Path]) -> list[str]:
    """Every problem of the given submission files, including duplicates among them."""
    problems: list[str] = []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            data = read_json(path)
        except SubmissionError as e:
            problems.append(str(e))
            continue
        problems += validate_submission(data, str(path))
        if isinstance(data, dict) and isinstance(data.get("results"), dict):
            key = records_hash(data["results"])
            if key in seen:
                problems.append(f"{path}: the same results as {seen[key]} (a duplicate submission)")
            seen[key] = path
    return problems


def submit(results_path: str | Path, name: str, meta: dict[str, Any], board: str | Path = "leaderboard") -> Path:
    """Validate `results_path` with `meta` and write it as a new submission; returns the file written."""
    results = read_json(Path(results_path))
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
    target.write_text(json.dumps(submission, separators=(",", ":")) + "\n")
    return target
