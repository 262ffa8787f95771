"""Fuzz the leaderboard validator: every mutation of a valid submission must be rejected.

    python benchmarks/validation_fuzz.py [--mutations 2000] [--trials 3]

Evaluates the explorer on four suites (a small valid results file), then applies `--mutations` mutations from
`icrl_bench.leaderboard.mutations` (fields dropped or retyped, numbers edited, trials removed or duplicated,
suite identity changed, impossible episodes with a recomputed summary) and prints, per kind, how many were tried
and rejected. Exit status 1 if any mutant was accepted.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time

from icrl_bench.agents import AgentSpec
from icrl_bench.leaderboard.mutations import mutants
from icrl_bench.leaderboard.validate import validate_results
from icrl_bench.protocol import evaluate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutations", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        evaluate(AgentSpec("explorer"), ["id", "nonstationary", "ood-slippery", "stitching"], out, args.trials, progress=False)
        results = json.load(open(f"{out}/results.json"))
    assert validate_results(results) == [], "the unmutated results must be valid"
    submission = {"submission_schema": 1, "meta": {}, "results": results, "verification": None}
    tried, rejected = collections.Counter(), collections.Counter()
    start = time.perf_counter()
    for kind, description, mutant in mutants(submission, args.mutations, args.seed):
        tried[kind] += 1
        if validate_results(mutant["results"]):
            rejected[kind] += 1
        else:
            print(f"ACCEPTED (a validator hole): {kind}: {description}")
    for kind in tried:
        print(f"{kind:20} tried {tried[kind]:5}  rejected {rejected[kind]:5}")
    total_tried, total_rejected = sum(tried.values()), sum(rejected.values())
    print(f"{'total':20} tried {total_tried:5}  rejected {total_rejected:5}  ({time.perf_counter() - start:.1f} s)")
    return 0 if total_tried == total_rejected else 1


if __name__ == "__main__":
    sys.exit(main())
