"""`verify`: re-run a submitted agent on fresh tasks with a seed its submitter did not know.

The verifier's secret seeds both the evaluation seed and a fresh task seed space, so the re-run plays the same
suites' *distributions* on maps nobody saw before (`stitching-paper` has one fixed map by nature). Per suite, the
per-trial AUCs of the submission and of the re-run are compared with a two-sided Welch z-test (normal
approximation: entries have 100 trials per suite); a suite is consistent when its p-value is at least 0.01
divided by the number of suites (Bonferroni) *and* the AUCs differ by at most 0.1 (a test that fails to reject
is no proof of equality; the margin bounds how much a submission can overstate). The re-run must be of an agent
with the same privilege (an agent shown the map cannot verify an entry that claims it was not).

The block records the agent spec re-run, the seed's SHA-256 (never the secret), the results' hash (so edits after
verification show) and an HMAC of both keyed by the secret, which `icrl-bench leaderboard validate --secret`
checks: only the holder of the secret can write a block that passes it. Fresh maps of a distribution can differ
from the fixed suite's by chance (the fixed `ood-slippery` maps are a little easier than average), which the
margin and the Bonferroni threshold absorb.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from icrl_bench.leaderboard.submission import (
    SubmissionError,
    read_json,
    records_hash,
    signature,
    validate_submission,
)
from icrl_bench.protocol.evaluation import AgentRecipe, evaluate
from icrl_bench.protocol.runner import ProtocolOptions

ALPHA = 0.01
MARGIN = 0.1
TEST = (
    "per suite: two-sided Welch z-test on per-trial AUC, alpha 0.01 with Bonferroni correction over suites, "
    "and |re-run AUC - submitted AUC| <= 0.1"
)



def _secret_numbers(secret: str) -> tuple[int, int]:
    digest = hashlib.sha256(f"icrl-bench verification:{secret}".encode()).digest()
    return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:8], "little")


def per_trial_auc(results: dict[str, Any], suite: str) -> np.ndarray:
    """Mean success over each trial of `suite` in a results dict."""
    return np.array([np.mean([e["success"] for e in r["episodes"]]) for r in results["records"][suite]])


def welch_p_value(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value that two samples have the same mean (Welch's statistic, normal approximation)."""
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)) if min(len(a), len(b)) > 1 else 0.0
    diff = abs(a.mean() - b.mean())
    if se == 0.0:
        return 1.0 if diff == 0.0 else 0.0
    return math.erfc(diff / se / math.sqrt(2))


def verify(
    submission: str | Path, recipe: AgentRecipe, secret: str, trials: int | None = None, workers: int = 1
) -> dict[str, Any]:
    """Re-run, compare, and write the verification block into the submission; returns that block."""
    path = Path(submission)
    data = read_json(path)
    problems = validate_submission(data, str(path))
    if problems:
        raise SubmissionError("fix the submission before verifying it:\n  " + "\n  ".join(problems))
    results = data["results"]
    suites = list(results["suites"])
    seed, entropy = _secret_numbers(secret)
    options = ProtocolOptions(**results["protocol"])
    with tempfile.TemporaryDirectory() as out:
        rerun = evaluate(recipe, suites, out, trials, seed, options, workers, progress=False, task_entropy=entropy)
        rerun["records"] = json.loads((Path(out) / "results.json").read_text())["records"]
    threshold = ALPHA / len(suites)
    report = {}
    for suite in suites:
        a, b = per_trial_auc(results, suite), per_trial_auc(rerun, suite)
        p = welch_p_value(a, b)
        report[suite] = {
            "submitted_auc": float(a.mean()),
            "rerun_auc": float(b.mean()),
            "difference": float(b.mean() - a.mean()),
            "p_value": p,
            "consistent": bool(p >= threshold and abs(b.mean() - a.mean()) <= MARGIN),
        }
    agent = dict(rerun["agent"])
    same_privilege = agent["privileged"] == results["agent"]["privileged"]
    results_hash = records_hash(results)
    block = {
        "verified": same_privilege and all(r["consistent"] for r in report.values()),
        "date": dt.date.today().isoformat(),
        "seed_sha256": hashlib.sha256(secret.encode()).hexdigest(),
        "trials": {s: rerun["suites"][s]["trials"] for s in suites},
        "test": TEST if same_privilege else TEST + "; FAILED: the re-run agent's privilege differs from the entry's",
        "suites": report,
        "agent": agent,
        "results_hash": results_hash,
        "signature": signature(secret, results_hash, agent),
    }
    data["verification"] = block
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    tmp.replace(path)
    return block
