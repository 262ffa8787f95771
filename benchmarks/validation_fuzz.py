"""Fuzz the leaderboard validator: every mutation of a valid submission must be rejected.

    python benchmarks/validation_fuzz.py [--mutations 2000] [--trials 3] [--board-mutations 400]

Evaluates the explorer on four suites (a small valid results file), then applies `--mutations` mutations from
`icrl_bench.leaderboard.mutations` (fields dropped or retyped, numbers edited, trials removed or duplicated,
suite identity changed, impossible episodes with a recomputed summary) and prints, per kind, how many were tried
and rejected. Then it attacks a *verified* board entry (two whole suites, signed with a key the board commits):
verification-block edits, signature edits, blocks re-signed with the attacker's own key, privilege flips, metadata
edits after signing, injection strings in links and names, the same records reordered under a new name, odd files
(a directory, a FIFO, a link to /dev/zero, a 5,000-digit integer, an oversized file), and removing the block.
Every one must be rejected, except removing the block, which must leave a valid entry shown as unverified.
Exit status 1 if any mutant was accepted.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time

from icrl_bench.agents import AgentSpec
from icrl_bench.leaderboard.mutations import ODD_FILES, board_mutants, mutants, write_odd_file
from icrl_bench.leaderboard.validate import validate_results
from icrl_bench.protocol import evaluate


def fuzz_board(n: int, seed: int = 0) -> tuple[collections.Counter, collections.Counter, list[str]]:
    """Attack a verified entry `n` times (plus each odd file); (tried, caught, holes) per kind."""
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from icrl_bench.leaderboard.signing import key_id, trust_key
    from icrl_bench.leaderboard.submission import submit, validate_board
    from icrl_bench.leaderboard.verify import verify

    tried, caught, holes = collections.Counter(), collections.Counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        board, key = Path(tmp, "board"), ed25519.Ed25519PrivateKey.generate()
        (board / "keys").mkdir(parents=True)
        (board / "keys" / f"{key_id(key.public_key())}.pem").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
        trust_key(board, key_id(key.public_key()), "the fuzzer")
        evaluate(AgentSpec("explorer"), ["stitching-paper", "stitching"], Path(tmp, "r"), progress=False)
        original = submit(Path(tmp, "r", "results.json"), "fuzzed entry", {"authors": "fuzz"}, board)
        block = verify(original, AgentSpec("explorer"), key)
        assert block["verified"] and validate_board([original], board) == [], "the unmutated entry must be verified"
        entry = json.loads(original.read_text())
        mutant_path = board / "submissions" / "mutant.json"
        for kind, description, mutant in board_mutants(entry, n, seed):
            tried[kind] += 1
            mutant_path.write_text(json.dumps(mutant))
            # The same records beside the original must be a duplicate; every other mutant is the entry edited in place.
            paths = [original, mutant_path] if kind == "reordered_copy" else [mutant_path]
            problems = [p for p in validate_board(paths, board) if "mutant.json" in p]
            ok = (problems == [] and mutant["verification"] is None) if kind == "remove_claim" else bool(problems)
            caught[kind] += ok
            if not ok:
                holes.append(f"{kind}: {description}: {problems[:2]}")
        for kind in ODD_FILES:
            mutant_path.unlink(missing_ok=True)
            odd = board / "submissions" / f"odd-{kind}.json"
            write_odd_file(odd, kind)
            tried[f"odd_file:{kind}"] += 1
            problems = [p for p in validate_board([original, odd], board) if odd.name in p]
            caught[f"odd_file:{kind}"] += bool(problems)
            if not problems:
                holes.append(f"odd file {kind} accepted")
    return tried, caught, holes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutations", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--board-mutations", type=int, default=400, help="attacks on a verified board entry")
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
    start = time.perf_counter()
    b_tried, b_caught, holes = fuzz_board(args.board_mutations, args.seed)
    for hole in holes:
        print(f"ACCEPTED (a board hole): {hole}")
    for kind in b_tried:
        outcome = "unverified" if kind == "remove_claim" else "rejected"
        print(f"{kind:26} tried {b_tried[kind]:5}  {outcome} {b_caught[kind]:5}")
    print(f"{'board total':26} tried {sum(b_tried.values()):5}  caught {sum(b_caught.values()):5}  "
          f"({time.perf_counter() - start:.1f} s)")  # fmt: skip
    return 0 if total_tried == total_rejected and not holes else 1


if __name__ == "__main__":
    sys.exit(main())
