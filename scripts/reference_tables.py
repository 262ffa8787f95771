"""Markdown tables of the reference models' results, for the README (read from results folders, never typed).

    python scripts/reference_tables.py results/icrl-dqn-small results/icrl-distill-small
    (each FOLDER is the default protocol; FOLDER-paper, if present, the paper's forced exploration)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def main(folders: list[str]) -> None:
    runs = {}
    for folder in folders:
        name = Path(folder).name
        default = json.loads((Path(folder) / "results.json").read_text())["summary"]
        paper_file = Path(folder + "-paper") / "results.json"
        paper = json.loads(paper_file.read_text())["summary"] if paper_file.exists() else {}
        runs[name] = (default, paper)
    print("| suite | " + " | ".join(f"{n}: AUC | episode 1 -> last 10 | AUC, paper schedule" for n in runs) + " |")
    print("|---|" + "---|---|---|" * len(runs))
    for suite in next(iter(runs.values()))[0]:
        cells = []
        for default, paper in runs.values():
            m = default[suite]
            cells += [_ci(m["auc"]), f"{m['first']['value']:.2f} -> {m['last10']['value']:.2f}",
                      _ci(paper[suite]["auc"]) if suite in paper else "-"]  # fmt: skip
        print(f"| {suite} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
