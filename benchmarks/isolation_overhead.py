"""What isolating the agent costs: `evaluate --isolate` against in-process evaluation, same run, same agent.

    python benchmarks/isolation_overhead.py [--agent explorer] [--repeats 3]

Evaluates the agent on the whole default suite set (100 trials each, 1 worker) in-process and isolated (the
agent in a child process behind a pipe, `icrl_bench.protocol.isolation`), alternating, and prints each wall time
and the ratio of the medians (target: at most 2x for `explorer`). Both runs' records are checked equal. Suite
tasks are generated once before timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from icrl_bench.agents import AgentSpec
from icrl_bench.protocol.evaluation import evaluate
from icrl_bench.protocol.isolation import IsolatedSpec
from icrl_bench.protocol.suites import DEFAULT_SUITES, SUITES


def timed(recipe, out: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    evaluate(recipe, DEFAULT_SUITES, out, progress=False)
    elapsed = time.perf_counter() - start
    records = json.loads((out / "results.json").read_text())["records"]
    return elapsed, {s: [{k: v for k, v in r.items() if k != "wall_time"} for r in rs] for s, rs in records.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default="explorer")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for suite in SUITES.values():
        suite.tasks  # generate once, outside the timings
    plain, isolated = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            t_plain, a = timed(AgentSpec(args.agent), Path(tmp, f"plain{k}"))
            t_iso, b = timed(IsolatedSpec(AgentSpec(args.agent)), Path(tmp, f"isolated{k}"))
            if a != b:
                print("ERROR: isolated records differ from in-process ones")
                return 1
            plain.append(t_plain)
            isolated.append(t_iso)
            print(f"repeat {k}: in-process {t_plain:6.2f} s   isolated {t_iso:6.2f} s")
    ratio = statistics.median(isolated) / statistics.median(plain)
    print(f"{args.agent}, default suite set: isolated / in-process = {ratio:.2f}x (target <= 2x); records identical")
    return 0 if ratio <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
