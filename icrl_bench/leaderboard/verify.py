"""`verify`: re-run a submitted agent, isolated, on fresh tasks with a seed its submitter cannot know.

The seed comes from the verifier's private key and the entry (`signing.derived_seed`): it seeds both the
evaluation seed and a fresh task seed space, so the re-run plays the same suites' *distributions* on maps nobody
saw before (`stitching-paper` has one fixed map by nature). The agent always runs in a child process
(`protocol.isolation`) that receives only what the protocol gives; the re-run's records stay in this process's
memory (no results folder for the agent to read), and the key is never on a command line or in the child's
environment. Per suite, the per-trial AUCs of the submission and of the re-run are compared with a one-sided
Welch z-test of overstatement (normal approximation: entries have 30 to 100 trials per suite, and the re-run plays
the entry's own count): a suite is consistent
unless the submitted AUC is significantly *above* the re-run's (p below 0.01 divided by the number of suites,
Bonferroni) or more than 0.1 above it (a test that fails to reject is no proof of equality; the margin bounds how
much a submission can overstate). A re-run that does better than the claim never fails an entry. The re-run agent
must declare the same privilege as the entry (an agent shown the map cannot verify an entry that claims it was
not).

The block is signed with Ed25519 together with the hash of the whole entry (`signing.sign_block`): anyone checks
it against the board's committed public keys with `icrl-bench leaderboard validate`, and any edit afterwards
breaks it. Fresh maps of a distribution can differ from the fixed suite's by chance (the fixed `ood-slippery`
maps are a little easier than average), which the margin and the Bonferroni threshold absorb.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import math
import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np

from icrl_bench.leaderboard import files
from icrl_bench.leaderboard.signer import KeySigner
from icrl_bench.leaderboard.submission import MIN_ENTRY_TRIALS, SubmissionError, read_json, validate_submission
from icrl_bench.protocol.evaluation import _suite, run_config
from icrl_bench.protocol.isolation import IsolatedSpec, forbid_inspection
from icrl_bench.protocol.runner import ProtocolOptions
from icrl_bench.protocol.sandbox import Sandbox
from icrl_bench.protocol.suites import SECRET_SEED_FLOOR
from icrl_bench.protocol.workers import Job, close_agent, play, split_jobs

ALPHA = 0.01
MARGIN = 0.1
TEST = (
    "per suite: one-sided Welch z-test that the submitted per-trial AUC overstates the re-run's, alpha 0.01 with "
    "Bonferroni correction over suites, and submitted AUC - re-run AUC <= 0.1; the agent re-run isolated on fresh maps"
)


def secret_numbers(seed: bytes) -> tuple[int, int]:
    """(evaluation seed, task entropy) of a re-run from its 32 secret seed bytes: 128 bits each, so that no agent
    can search for them (a 32-bit seed was found by brute force from the agent seeds in a minute). The evaluation
    seed is at least `SECRET_SEED_FLOOR`, which makes the trials' seeds come from SHA-256 (`Suite.trial_seeds`)."""
    return SECRET_SEED_FLOOR + int.from_bytes(seed[:16], "little"), int.from_bytes(seed[16:32], "little")


def per_trial_auc(records: list[dict[str, Any]]) -> np.ndarray:
    """Mean success over each trial of a suite's records."""
    return np.array([np.mean([e["success"] for e in r["episodes"]]) for r in records])


def welch_p_value(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value that two samples have the same mean (Welch's statistic, normal approximation)."""
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)) if min(len(a), len(b)) > 1 else 0.0
    diff = abs(a.mean() - b.mean())
    if se == 0.0:
        return 1.0 if diff == 0.0 else 0.0
    return math.erfc(diff / se / math.sqrt(2))


def overstatement_p_value(submitted: np.ndarray, rerun: np.ndarray) -> float:
    """One-sided p-value of "the submitted mean is not above the re-run's" (Welch's statistic, normal
    approximation): small only when the submission claims significantly more than the re-run shows."""
    se = math.sqrt(submitted.var(ddof=1) / len(submitted) + rerun.var(ddof=1) / len(rerun)) if min(
        len(submitted), len(rerun)) > 1 else 0.0  # fmt: skip
    excess = submitted.mean() - rerun.mean()
    if se == 0.0:
        return 0.0 if excess > 0 else 1.0
    return 0.5 * math.erfc(excess / se / math.sqrt(2))


def _play(recipe: IsolatedSpec, jobs: list[Job], seed: int, options: ProtocolOptions,
          entropy: int) -> list[dict[str, Any]]:  # fmt: skip
    """Play the (suite, trials) jobs with one isolated agent; the records, in memory only."""
    forbid_inspection()
    records: list[dict[str, Any]] = []
    agent = recipe.build()
    try:
        play(agent, recipe.privileged, jobs, functools.partial(_suite, task_entropy=entropy), seed, options,
             lambda record: records.append(record.to_dict()))  # fmt: skip
    finally:
        close_agent(agent)
    return records


def rerun(recipe: IsolatedSpec, counts: dict[str, int], seed: int, options: ProtocolOptions, entropy: int,
          workers: int = 1, ray: Any = None) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """Every suite's records of the re-run (suite -> records in trial order), played by `workers` processes, or by
    `workers` Ray actors with `ray` (a `RayBackend`; each actor forbids inspection before it builds its agent)."""
    jobs = [(s, list(range(n))) for s, n in counts.items()]
    if ray is not None:
        from icrl_bench.protocol.ray_backend import play_on_ray

        records = []
        play_on_ray(recipe, jobs, seed, options, functools.partial(_suite, task_entropy=entropy), workers, ray,
                    lambda record: records.append(record.to_dict()), before=forbid_inspection)  # fmt: skip
    elif workers <= 1:
        records = _play(recipe, jobs, seed, options, entropy)
    else:
        chunks = split_jobs(jobs, workers)
        with cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = pool.map(_play, *zip(*[(recipe, [chunk], seed, options, entropy) for chunk in chunks]))
            records = [r for part in parts for r in part]
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in counts}
    for r in sorted(records, key=lambda r: r["trial"]):
        out[r["suite"]].append(r)
    return out


def verify(submission: str | Path, recipe: Any, signer: Any, trials: int | None = None, workers: int = 1,
           sandbox: Sandbox | None = None, step_timeout: float = 10.0, ray: Any = None) -> dict[str, Any]:  # fmt: skip
    """Re-run the agent of `recipe` (an `AgentSpec`; always isolated, its child confined by `sandbox`: default
    bubblewrap, and a `SandboxError` where it cannot start; ``Sandbox("none")`` or a container ``prefix`` only
    when the maintainer asks), compare, and write the signed verification block into the submission; returns the
    block. `step_timeout`: the re-run's own limit per agent call (the submission's is not used: an entry recorded
    with no limit must not let its agent hang the verifier). `ray`: a `RayBackend` to re-run on (`rerun`).
    `signer`: a `leaderboard.signer.SignerProcess` (the CLI's: the key stays in its own process) or anything with
    ``seed(entry)`` and ``sign(block, entry)``; a bare private key is wrapped in a `KeySigner` (tests, library use)."""
    path = Path(submission)
    data = read_json(path)
    data["verification"] = None  # a new verification replaces any earlier block
    problems = validate_submission(data, str(path))
    if problems:
        raise SubmissionError("fix the submission before verifying it:\n  " + "\n  ".join(problems))
    forbid_inspection()
    results = data["results"]
    if not hasattr(signer, "seed"):  # a bare private key (it has a sign method, but no seed)
        signer = KeySigner(signer)
    secret = signer.seed(data)
    seed, entropy = secret_numbers(secret)
    options = dataclasses.replace(ProtocolOptions(**results["protocol"]), step_timeout=step_timeout)
    isolated = recipe if isinstance(recipe, IsolatedSpec) else IsolatedSpec(recipe, sandbox)
    own = {s: d["trials"] for s, d in results["suites"].items()}  # the entry's own trial count per suite
    asked = own if trials is None else {s: min(trials, n) for s, n in own.items()}
    config = run_config(isolated, list(results["suites"]), asked, seed, options, entropy)
    counts = {s: d["trials"] for s, d in config["suites"].items()}
    records = rerun(isolated, counts, seed, options, entropy, workers, ray)
    threshold = ALPHA / len(counts)
    report = {}
    for suite in counts:
        a, b = per_trial_auc(results["records"][suite]), per_trial_auc(records[suite])
        p = overstatement_p_value(a, b)
        report[suite] = {
            "submitted_auc": float(a.mean()),
            "rerun_auc": float(b.mean()),
            "difference": float(b.mean() - a.mean()),
            "p_value": float(p),
            "consistent": bool(p >= threshold and a.mean() - b.mean() <= MARGIN),
        }
    agent = dict(config["agent"])
    same_privilege = agent["privileged"] == results["agent"]["privileged"]
    whole = counts == own and min(counts.values()) >= MIN_ENTRY_TRIALS  # a quick check verifies nothing
    test = TEST
    if not same_privilege:
        test += "; FAILED: the re-run agent's privilege differs from the entry's"
    if not whole:
        test += "; a quick check on fewer trials than the entry has: never a verification"
    block = {
        "verified": same_privilege and whole and all(r["consistent"] for r in report.values()),
        "date": dt.date.today().isoformat(),
        "seed_sha256": hashlib.sha256(secret).hexdigest(),
        "trials": counts,
        "test": test,
        "suites": report,
        "agent": agent,
        "isolated": True,
    }
    data["verification"] = signer.sign(block, data)
    try:
        files.write_board_file(path.parent, path, json.dumps(data, separators=(",", ":")) + "\n")
    except files.BoardFileError as e:
        raise SubmissionError(str(e)) from None
    return data["verification"]
