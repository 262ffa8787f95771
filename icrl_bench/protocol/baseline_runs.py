"""The built-in baselines on every default suite: their results, the README table and the curves file.

`icrl-bench baselines` and `icrl-bench leaderboard add-baselines` use these. The curves that `results.py` draws
behind every evaluation ship in ``protocol/baseline_curves.json``; `write_curves` writes them to a path the
caller names (a maintainer's checkout), never into an installed package by itself.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

BASELINES = ("random", "qlearning", "explorer", "oracle")


def baselines_markdown(results: dict[str, dict]) -> str:
    """A markdown table: one row per suite, one column per agent, AUC with its 95% CI."""
    agents = list(results)
    suites = list(next(iter(results.values()))["summary"])
    lines = ["| suite | " + " | ".join(agents) + " |", "|---|" + "---|" * len(agents)]
    for suite in suites:
        cells = []
        for agent in agents:
            auc = results[agent]["summary"][suite]["auc"]
            cells.append(f"{auc['value']:.3f} [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}]")
        lines.append(f"| {suite} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluate_baselines(out: str, trials: int | None, workers: int) -> dict[str, dict]:
    """The four built-in baselines on every default suite, seed 0, into ``out/<name>``; their results."""
    from icrl_bench.agents import AgentSpec  # the agents module imports the protocol: resolved at call time
    from icrl_bench.protocol.evaluation import evaluate
    from icrl_bench.protocol.suites import DEFAULT_SUITES

    # An existing folder is continued (an interrupted run completed, a finished one summarised again).
    return {
        name: evaluate(AgentSpec(name), DEFAULT_SUITES, f"{out}/{name}", trials, 0, workers=workers,
                       resume=os.path.exists(f"{out}/{name}/run.json"), progress=sys.stderr.isatty())  # fmt: skip
        for name in BASELINES
    }


def write_curves(results: dict[str, dict[str, Any]], path: str | Path) -> Path:
    """The baselines' success curves per suite, as `results.py` reads them, written to `path`."""
    curves = {a: {s: {"curve": m["curve"]} for s, m in r["summary"].items()} for a, r in results.items()}
    path = Path(path)
    path.write_text(json.dumps(curves, indent=1) + "\n")
    return path
