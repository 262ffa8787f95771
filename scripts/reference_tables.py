"""Markdown tables of the reference models' results beside the baselines, for the README (read, never typed).

    python scripts/reference_tables.py results/icrl-distill-small results/icrl-dqn-small
    (each FOLDER is the default protocol; FOLDER-paper, if present, the paper's forced exploration; a board
    entry leaderboard/submissions/X.json gives its default-protocol results; the baselines' numbers come from
    their verified leaderboard entries)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def main(folders: list[str]) -> None:
    board = Path(__file__).resolve().parents[1] / "leaderboard" / "submissions"
    baselines = {n: json.loads((board / f"baseline-{n}.json").read_text())["results"]["summary"]
                 for n in ("random", "qlearning", "explorer")}  # fmt: skip
    runs = {}
    for folder in folders:
        if folder.endswith(".json"):  # a board entry: its results (the agent's name heads the column)
            results = json.loads(Path(folder).read_text())["results"]
            runs[results["agent"]["label"]] = (results["summary"], {})
            continue
        default = json.loads((Path(folder) / "results.json").read_text())["summary"]
        paper_file = Path(folder + "-paper") / "results.json"
        runs[Path(folder).name] = (default, json.loads(paper_file.read_text())["summary"] if paper_file.exists() else {})
    suites = list(next(iter(runs.values()))[0])
    print("AUC [95% CI], 100 trials per suite, seed 0, default protocol:\n")
    print("| suite | " + " | ".join(list(baselines) + list(runs)) + " |")
    print("|---|" + "---|" * (len(baselines) + len(runs)))
    for suite in suites:
        cells = [f"{baselines[b][suite]['auc']['value']:.3f}" for b in baselines]
        cells += [_ci(default[suite]["auc"]) for default, _ in runs.values()]
        print(f"| {suite} | " + " | ".join(cells) + " |")
    print("\nLearning within the trial (success in episode 1 -> the last ten episodes) and the AUC under the paper's"
          " forced-exploration schedule:\n")
    print("| suite | " + " | ".join(f"{n}: episode 1 -> last 10 | {n}: AUC, paper schedule" for n in runs) + " |")
    print("|---|" + "---|---|" * len(runs))
    for suite in suites:
        cells = []
        for default, paper in runs.values():
            m = default[suite]
            cells += [f"{_ci(m['first'])} -> {_ci(m['last10'])}", _ci(paper[suite]["auc"]) if suite in paper else "-"]
        print(f"| {suite} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
