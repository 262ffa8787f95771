"""Submissions: a results.json plus metadata, checked and written to ``leaderboard/submissions/<slug>.json``.

A submission file is ``{"submission_schema": 1, "meta": {...}, "results": {...}, "verification": null | {...}}``
(documented in ``leaderboard/README.md``). Nothing is ever overwritten: a second submission of the same results
(same records, whatever the name) or of an existing slug is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

from icrl_bench.leaderboard import files
from icrl_bench.leaderboard.validate import AGENT_FIELDS, _type_ok, validate_results
from icrl_bench.protocol.suites import SUITES

SUBMISSION_SCHEMA = 1
MAX_NAME_CHARS = 200  # the entry name
MAX_TEXT_CHARS = 500  # every other metadata text
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
VERIFICATION_FIELDS = ("verified", "date", "key_id", "seed_sha256", "trials", "test", "suites", "agent", "isolated",
                       "entry_hash", "signature")  # fmt: skip
REPORT_FIELDS = {"submitted_auc": float, "rerun_auc": float, "difference": float, "p_value": float, "consistent": bool}
URL_FIELDS = ("code_url", "paper_url")
# Leaderboard entries are comparable only under one evaluation seed (no seed shopping), on each suite's first trials.
BOARD_SEED = 0
MIN_ENTRY_TRIALS = 30  # trials per suite an entry needs (verification re-runs the entry's own count)


class SubmissionError(ValueError):
    """A submission that cannot be accepted; the message lists every problem."""


def slugify(name: str) -> str:
    """The file name of an entry: lower-case letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise SubmissionError(f"the name {name!r} gives an empty file name: use letters or digits")
    return slug[:80]


def read_json(path: str | Path) -> Any:
    """Strict JSON from a regular file of bounded size (`files.read_json`); any problem is a SubmissionError."""
    try:
        return files.read_json(path)
    except files.BoardFileError as e:
        raise SubmissionError(str(e)) from None


def load_meta(path: str | Path) -> dict[str, Any]:
    """Metadata from JSON, or from YAML of flat ``key: value`` lines (no PyYAML needed)."""
    if str(path).endswith(".json"):
        data = read_json(path)
        if not isinstance(data, dict):
            raise SubmissionError(f"{path}: the metadata must be a JSON object")
        return data
    try:
        text = files.read_bytes(path, limit=100_000).decode("utf-8")
    except (files.BoardFileError, UnicodeDecodeError) as e:
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


# Unicode categories of control, format (bidi overrides, zero-width) and line-break characters: none belongs in a
# one-line field (validation refuses them; rendering removes them once more).
UNSAFE_CATEGORIES = ("Cc", "Cf", "Zl", "Zp", "Cs")


def _unsafe_characters(text: str) -> list[str]:
    """The unsafe characters of `text` (`UNSAFE_CATEGORIES`), as U+XXXX."""
    return sorted({f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in UNSAFE_CATEGORIES})


# Characters that show nothing though Unicode calls some of them letters (Hangul fillers, the braille blank, ...).
INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5\u180e\u034f\u00ad\u061c\ufeff")
# Letters of other scripts that look like Latin ones: a name's skeleton maps them to the Latin letter.
CONFUSABLES = str.maketrans("аеорсухіјѕһԁӏԛԝвкмнтАВЕКМНОРСТХЅІЈοαρντικχυΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
                            "aeopcyxijshdlqwbkmhtABEKMHOPCTXSIJoapvtikxuABEZHIKMNOPTYX")  # fmt: skip


def _script(c: str) -> str:
    try:
        return unicodedata.name(c).split()[0]
    except ValueError:
        return "?"


def name_skeleton(name: str) -> str:
    """What a name looks like: NFKC, look-alike letters of other scripts mapped to Latin, case and spaces folded,
    invisible characters gone. Two names with one skeleton read as the same name."""
    text = unicodedata.normalize("NFKC", name).translate(CONFUSABLES).casefold()
    return " ".join("".join(c for c in text if c not in INVISIBLE and unicodedata.category(c) not in ("Cf", "Mn", "Me")).split())


def name_problems(name: str) -> list[str]:
    """What makes an entry name unfit to show: not NFKC-normal, nothing visible, or a word that mixes scripts
    (a Cyrillic 'е' in 'explorer')."""
    problems = []
    if unicodedata.normalize("NFKC", name) != name:
        problems.append(f"is not NFKC-normalised (write {unicodedata.normalize('NFKC', name)!r})")
    if not name_skeleton(name):
        problems.append("shows nothing (only spaces or invisible characters)")
    for word in name.split():
        scripts = {_script(c) for c in word if c.isalpha()}
        if len(scripts - {"?"}) > 1:
            problems.append(f"mixes scripts in the word {word!r} ({', '.join(sorted(scripts))}): a look-alike name")
            break
    return problems


def validate_meta(meta: Any, file: str) -> list[str]:
    """Every problem of a submission's metadata (required fields, types, lengths, one plain line, safe links)."""
    if not isinstance(meta, dict):
        return [f"{file}: 'meta' must be an object"]
    problems = []
    for key, (types, required) in META_FIELDS.items():
        value = meta.get(key)
        limit = MAX_NAME_CHARS if key == "name" else MAX_TEXT_CHARS
        if key not in meta:
            if required:
                problems.append(f"{file}: meta field '{key}' is required")
        elif not _type_ok(value, types):
            problems.append(f"{file}: meta field '{key}' has the wrong type ({type(value).__name__})")
        elif isinstance(value, str) and not value.strip():
            problems.append(f"{file}: meta field '{key}' is empty")
        elif isinstance(value, str) and len(value) > limit:
            problems.append(f"{file}: meta field '{key}' has {len(value):,} characters; at most {limit} are allowed")
        elif isinstance(value, str) and _unsafe_characters(value):
            problems.append(f"{file}: meta field '{key}' contains line breaks or control/bidi characters "
                            f"({', '.join(_unsafe_characters(value))}); use one line of plain text")  # fmt: skip
        elif key == "name" and name_problems(value):
            problems += [f"{file}: meta field 'name' {p}" for p in name_problems(value)]
        elif isinstance(value, int) and not isinstance(value, bool) and not 0 <= value < 10**15:
            problems.append(f"{file}: meta field '{key}' must be between 0 and 10^15, got {value}")
        elif key in URL_FIELDS and value is not None and not safe_link(value):
            problems.append(f"{file}: meta field '{key}' must be an https:// URL or a relative path of letters, digits "
                            f"and -._~/ (no spaces, quotes, brackets or backslashes), got {value!r}")  # fmt: skip
    for key in set(meta) - set(META_FIELDS):
        problems.append(f"{file}: unknown meta field {key[:50]!r} (allowed: {', '.join(META_FIELDS)})")
    return problems


_HTTPS = re.compile(r"https://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?(?:/[A-Za-z0-9\-._~/?#=&%+,;:@]*)?")
_RELATIVE = re.compile(r"[A-Za-z0-9\-._~][A-Za-z0-9\-._~/]*")


def safe_link(url: str) -> bool:
    """An ``https://host/...`` URL, or a repository-relative path, with no character that Markdown or HTML give a
    meaning to (brackets, parentheses, quotes, spaces, backslashes, ``<``, ``>``, ``|``, backticks)."""
    return bool(_HTTPS.fullmatch(url) or (_RELATIVE.fullmatch(url) and not url.startswith("/")))


# Fields that are not the agent's outcomes: times, and what validation recomputes from the map (`optimal` is checked
# to a tolerance, so its last digits are free: they must not make a "new" entry).
NOT_OUTCOMES = frozenset({"wall_time", "optimal", "shortest"})


def _outcomes(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _outcomes(v) for k, v in node.items() if k not in NOT_OUTCOMES}
    if isinstance(node, list):
        return [_outcomes(v) for v in node]
    return node


def records_hash(results: dict[str, Any]) -> str:
    """Content hash of the seed and the agent's outcomes in canonical order (agent, names, wall times and
    map-derived values excluded): equal for any re-submission of the same trials, however its suites, trials or
    fields are ordered or its free digits edited."""
    records = {}
    for suite, recs in (results.get("records") or {}).items():
        if isinstance(recs, list):
            recs = sorted((_outcomes(r) for r in recs if isinstance(r, dict)), key=lambda r: json.dumps(r, sort_keys=True))
        records[suite] = recs
    payload = {"seed": results.get("seed"), "records": records}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _perfect(records: list[Any]) -> bool:
    """Every episode a success in the fewest moves: the same records for every agent that plays perfectly."""
    return all(isinstance(r, dict) and all(isinstance(e, dict) and e.get("success") == 1 and e.get("steps") == e.get(
        "shortest") for e in r.get("episodes") or [{}]) for r in records)  # fmt: skip


def suite_record_sets(results: dict[str, Any]) -> dict[str, frozenset[str]]:
    """Per suite, the set of its records' outcome hashes (as `records_hash` reads a record): what a copy of a suite
    from another entry keeps, however it is relabelled, reordered or cut. A suite played perfectly is left out
    (empty set): two perfect agents have the same records by necessity, and such records carry nothing to copy."""
    out = {}
    for suite, recs in (results.get("records") or {}).items():
        if isinstance(recs, list):
            out[suite] = frozenset() if _perfect(recs) else frozenset(
                hashlib.sha256(json.dumps(_outcomes(r), sort_keys=True).encode()).hexdigest()
                for r in recs if isinstance(r, dict))  # fmt: skip
    return out


def duplicate_suites(mine: dict[str, frozenset[str]], theirs: dict[str, frozenset[str]]) -> list[str]:
    """The suites whose records equal, or are a subset of, or contain, the other entry's records of that suite
    (the same seed: records carry their seeds)."""
    return sorted(s for s, a in mine.items() if a and s in theirs and theirs[s] and (a <= theirs[s] or theirs[s] <= a))


def board_problems(results: dict[str, Any], file: str) -> list[str]:
    """What a valid results file still needs to be a leaderboard entry: whole suites under the board's seed."""
    problems = []
    if results.get("seed") != BOARD_SEED:
        problems.append(f"{file}: leaderboard entries use evaluation seed {BOARD_SEED} (got {results.get('seed')!r}); re-run without --seed")
    for name, described in results.get("suites", {}).items():
        suite = SUITES.get(name)
        trials = described.get("trials") if isinstance(described, dict) else None
        if suite is not None and not (isinstance(trials, int) and MIN_ENTRY_TRIALS <= trials <= suite.n_trials):
            problems.append(f"{file}: suite '{name}' has {trials} trials; entries need at least {MIN_ENTRY_TRIALS} "
                            f"(the paper's count is 50; all {suite.n_trials} by default), the suite's first ones")  # fmt: skip
    return problems


_HEX16, _HEX64 = re.compile(r"[0-9a-f]{16}"), re.compile(r"[0-9a-f]{64}")


def _block_shape_problems(block: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """Strict types of every field of a verification block."""
    bad = []
    if not isinstance(block["verified"], bool):
        bad.append("verified must be true or false")
    if not (isinstance(block["date"], str) and re.fullmatch(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]", block["date"])):
        bad.append("date must be YYYY-MM-DD")
    for key, pattern in (("key_id", _HEX16), ("seed_sha256", _HEX64), ("entry_hash", _HEX64)):
        if not (isinstance(block[key], str) and pattern.fullmatch(block[key])):
            bad.append(f"{key} must be {16 if pattern is _HEX16 else 64} lower-case hex digits")
    if not (isinstance(block["signature"], str) and re.fullmatch(r"[A-Za-z0-9+/]{86}==", block["signature"])):
        bad.append("signature must be a base64 Ed25519 signature")
    if not (isinstance(block["test"], str) and len(block["test"]) <= 1000 and not _unsafe_characters(block["test"])):
        bad.append("test must be one line of at most 1000 characters")
    if not isinstance(block["isolated"], bool):
        bad.append("isolated must be true or false")
    suites = set(results.get("suites", {}))
    trials = block["trials"]
    if not (isinstance(trials, dict) and set(trials) == suites
            and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100_000 for v in trials.values())):
        bad.append("trials must map every suite of the results to a trial count")
    elif block["verified"] is True and any(n != results["suites"][s].get("trials") or n < MIN_ENTRY_TRIALS
                                           for s, n in trials.items()):  # fmt: skip
        bad.append("verified is true, but the re-run did not play the entry's own trial count of every suite (a quick "
                   "check)")  # fmt: skip
    report = block["suites"]
    if not (isinstance(report, dict) and set(report) == suites and all(
            isinstance(r, dict) and set(r) == set(REPORT_FIELDS)
            and all(isinstance(r[k], t) and (t is bool or not isinstance(r[k], bool)) for k, t in REPORT_FIELDS.items())
            for r in report.values())):  # fmt: skip
        bad.append(f"suites must report every suite of the results with exactly {sorted(REPORT_FIELDS)}")
    agent = block["agent"]
    if not (isinstance(agent, dict) and set(agent) == set(AGENT_FIELDS)
            and all(isinstance(agent[k], t) for k, t in AGENT_FIELDS.items())):  # fmt: skip
        bad.append(f"agent must have exactly {sorted(AGENT_FIELDS)}")
    return bad


def verification_problems(submission: dict[str, Any], file: str, keys: dict[str, Any] | None) -> list[str]:
    """Shape of the verification block and its signature against the board's committed public `keys`.

    `keys` None: the signature is not checked (a submission being prepared, before it is on a board)."""
    block = submission.get("verification")
    if block is None:
        return []
    if not isinstance(block, dict) or set(block) != set(VERIFICATION_FIELDS):
        return [f"{file}: 'verification' must be null or have exactly {list(VERIFICATION_FIELDS)} (blocks of "
                "older versions are not accepted: have the entry verified again, or set it to null)"]  # fmt: skip
    problems = [f"{file}: verification.{p}" for p in _block_shape_problems(block, submission["results"])]
    if not problems and keys is not None:
        from icrl_bench.leaderboard.signing import signature_problem

        problem = signature_problem(block, submission, keys)
        if problem:
            problems.append(f"{file}: {problem} (set 'verification' to null to list the entry as unverified)")
    return problems


def unencodable_fields(value: Any, where: str = "") -> list[str]:
    """The paths (``meta.name``, ``results.records.id[3]...``) of every string, key or value, that is no valid
    Unicode text: a lone surrogate such as ``\ud800`` (JSON allows it; UTF-8, hashing and rendering do not)."""
    out: list[str] = []
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            out.append(where or "(top level)")
    elif isinstance(value, dict):
        for k, v in value.items():
            name = f"{where}.{k}" if where else str(k)
            try:
                str(k).encode("utf-8")
            except UnicodeEncodeError:
                out.append(f"{where or '(top level)'}: a key")
                name = f"{where}.<key>"
            out += unencodable_fields(v, name)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += unencodable_fields(v, f"{where}[{i}]")
    return out


def validate_submission(data: Any, file: str, keys: dict[str, Any] | None = None) -> list[str]:
    """Every problem of one submission file (signatures checked against `keys` when given)."""
    if not isinstance(data, dict):
        return [f"{file}: not a JSON object"]
    bad_text = unencodable_fields(data)
    if bad_text:  # first: every later check hashes, encodes or prints these strings
        return [f"{file}: field {p.encode('ascii', 'backslashreplace').decode()} holds text that is not valid Unicode "
                "(a lone surrogate such as \\ud800): write it as plain UTF-8 text" for p in bad_text[:20]]  # fmt: skip
    problems = []
    if data.get("submission_schema") != SUBMISSION_SCHEMA:
        problems.append(f"{file}: submission_schema should be {SUBMISSION_SCHEMA}, got {data.get('submission_schema')!r}")
    unknown = set(data) - {"submission_schema", "meta", "results", "verification"}
    if unknown:
        problems.append(f"{file}: unknown top-level field(s) {sorted(str(k)[:50] for k in unknown)}")
    problems += validate_meta(data.get("meta"), f"{file} (meta)")
    results = data.get("results")
    found = validate_results(results, file)
    problems += found
    if not found:
        problems += board_problems(results, file)
        problems += verification_problems(data, file, keys)
    return problems


def board_keys(board: str | Path) -> dict[str, Any]:
    """The board's committed verification keys (needs `cryptography` only if the board has keys)."""
    if not (Path(board) / "keys").is_dir():
        return {}
    from icrl_bench.leaderboard.signing import load_public_keys

    return load_public_keys(board)


TRUSTED_KEYS_FILE = "trusted_keys.json"  # inside the board folder: {"keys": {key_id: {"holder", "added", "status"}}}


def trusted_key_problems(board: str | Path) -> list[str]:
    """Every key file in ``BOARD/keys`` must be listed in ``BOARD/trusted_keys.json`` (and every listed key have
    its file): adding a key is then a change of that file, which CODEOWNERS puts under review."""
    folder = Path(board) / "keys"
    files_there = {p.stem for p in folder.glob("*.pem")} if folder.is_dir() else set()
    if not files_there:
        return []
    path = Path(board) / TRUSTED_KEYS_FILE
    try:
        listed = set(json.loads(path.read_text())["keys"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"{path}: the board has keys but no readable list of trusted keys ({type(e).__name__}): list every "
                f"key id of {folder} there"]  # fmt: skip
    return ([f"{folder}/{k}.pem is not listed in {path}: a key the board does not trust" for k in sorted(files_there - listed)]
            + [f"{path} lists {k}, which has no file in {folder}" for k in sorted(listed - files_there)])  # fmt: skip


def validate_board(paths: list[Path], board: str | Path = "leaderboard") -> list[str]:
    """Every problem of the given submission files, including duplicates among them; verification blocks must
    carry a signature that checks against a public key committed in ``BOARD/keys``."""
    problems: list[str] = []
    if not paths:
        return ["no submission files to check (is the board folder right?)"]
    problems += trusted_key_problems(board)
    keys = board_keys(board)
    seen: list[tuple[Path, dict[str, frozenset[str]], str]] = []
    names: dict[str, Path] = {}
    for path in paths:
        try:
            data = read_json(path)
        except SubmissionError as e:
            problems.append(str(e))
            continue
        found = validate_submission(data, str(path), keys)
        problems += found
        if not found:
            mine, whole = suite_record_sets(data["results"]), records_hash(data["results"])
            look = name_skeleton(data["meta"]["name"])
            if look in names:
                problems.append(f"{path}: its name reads as the name of {names[look]} (a look-alike)")
            names[look] = path
            for other, theirs, other_whole in seen:
                copied = duplicate_suites(mine, theirs)
                if whole == other_whole:
                    problems.append(f"{path}: the same results as {other} (a duplicate submission)")
                elif copied:
                    problems.append(f"{path}: suite(s) {', '.join(copied)} repeat the records of {other} (the same "
                                    "trials, or a subset of them: a duplicate)")  # fmt: skip
            seen.append((path, mine, whole))
    return problems


def submission_paths(board: str | Path) -> list[Path]:
    """The submission files of a board, in name order (anything there that is not a regular file is listed too,
    so that validation names it)."""
    folder = Path(board) / "submissions"
    if folder.is_symlink():
        raise SubmissionError(f"{folder} is a symbolic link: the board's folders must be real folders")
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def submit(results_path: str | Path, name: str, meta: dict[str, Any], board: str | Path = "leaderboard") -> Path:
    """Validate `results_path` with `meta` and write it as a new submission; returns the file written."""
    results = read_json(results_path)
    if "name" in meta and meta["name"] != name:
        raise SubmissionError(f"the metadata names the entry {meta['name']!r} but --name says {name!r}: give one name")
    name = unicodedata.normalize("NFKC", name)
    meta = {"name": name, **{k: v for k, v in meta.items() if k != "name"}}
    submission = {"submission_schema": SUBMISSION_SCHEMA, "meta": meta, "results": results, "verification": None}
    problems = validate_submission(submission, str(results_path))
    if not problems:
        target = Path(board) / "submissions" / f"{slugify(name)}.json"
        if target.exists() or target.is_symlink():
            problems.append(f"{target} already exists: choose another --name (entries are never overwritten)")
        key, mine = records_hash(results), suite_record_sets(results)
        for path in submission_paths(board):
            try:
                other = read_json(path)
            except SubmissionError:
                continue
            if not (isinstance(other, dict) and isinstance(other.get("results"), dict)):
                continue
            if records_hash(other["results"]) == key:
                problems.append(f"these results are already on the board as {path}")
            other_name = other.get("meta", {}).get("name") if isinstance(other.get("meta"), dict) else None
            if isinstance(other_name, str) and name_skeleton(other_name) == name_skeleton(name):
                problems.append(f"the name {name!r} reads as {other_name!r} of {path}: choose a name of your own")
            elif copied := duplicate_suites(mine, suite_record_sets(other["results"])):
                problems.append(f"suite(s) {', '.join(copied)} repeat the records of {path} (the same trials, or a "
                                "subset of them): submit results of your own agent")  # fmt: skip
    if problems:
        raise SubmissionError("the submission was not written:\n  " + "\n  ".join(problems))
    try:
        return files.write_board_file(board, target, json.dumps(submission, separators=(",", ":")) + "\n", exclusive=True)
    except files.BoardFileError as e:
        raise SubmissionError(str(e)) from None
