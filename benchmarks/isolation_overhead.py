"""What isolating the agent costs: `evaluate --isolate` against in-process evaluation, same run, same agent.

    python benchmarks/isolation_overhead.py [--agent explorer] [--repeats 3] [--suites id,ood-large]

Evaluates the agent on the whole default suite set (100 trials each, 1 worker) in-process, isolated in a plain
child process behind a pipe (`icrl_bench.protocol.isolation`, `--no-sandbox`) and isolated in the default
sandbox (bubblewrap, `icrl_bench.protocol.sandbox`), alternating, and prints each wall time and the ratios of the
medians (target: at most 2x for `explorer`, isolated / in-process; the sandbox's own cost is the ratio of the two
isolated runs). All runs' records are checked equal. Suite tasks are generated once before timing.
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
from icrl_bench.protocol.sandbox import Sandbox, choose_sandbox
from icrl_bench.protocol.suites import DEFAULT_SUITES, SUITES


def timed(recipe, out: Path, suites) -> tuple[float, dict]:
    start = time.perf_counter()
    evaluate(recipe, suites, out, progress=False)
    elapsed = time.perf_counter() - start
    records = json.loads((out / "results.json").read_text())["records"]
    return elapsed, {s: [{k: v for k, v in r.items() if k != "wall_time"} for r in rs] for s, rs in records.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default="explorer")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--suites", default=",".join(DEFAULT_SUITES), help="comma-separated (default: all)")
    args = parser.parse_args()
    suites = args.suites.split(",")
    for name in suites:
        SUITES[name].tasks  # generate once, outside the timings
    sandbox = choose_sandbox()
    times: dict[str, list[float]] = {"in-process": [], "child": [], "sandbox": []}
    recipes = {"in-process": AgentSpec(args.agent), "child": IsolatedSpec(AgentSpec(args.agent), Sandbox("none")),
               "sandbox": IsolatedSpec(AgentSpec(args.agent), sandbox)}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            records = []
            for name, recipe in recipes.items():
                elapsed, got = timed(recipe, Path(tmp, f"{name}{k}"), suites)
                times[name].append(elapsed)
                records.append(got)
            if any(r != records[0] for r in records):
                print("ERROR: isolated records differ from in-process ones")
                return 1
            print(f"repeat {k}: " + "   ".join(f"{n} {t[-1]:6.2f} s" for n, t in times.items()))
    med = {n: statistics.median(t) for n, t in times.items()}
    print(f"sandbox: {sandbox.describe()}")
    print(f"{args.agent}, {len(suites)} suite(s): isolated in a plain child / in-process = "
          f"{med['child'] / med['in-process']:.2f}x; in the sandbox / in-process = {med['sandbox'] / med['in-process']:.2f}x "
          f"(target <= 2x); sandbox / plain child = {med['sandbox'] / med['child']:.2f}x; records identical")  # fmt: skip
    return 0 if med["sandbox"] / med["in-process"] <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
