"""Evaluate the RL^2 ablations (scripts/rl2_ablations.sh) and print the README's table (read, never typed).

    python scripts/rl2_ablation_table.py [--evaluate]

Each ablation's policy after 150 updates and the shipped recipe's own policy after 150 updates
(runs/rl2-general/policy-150.pt) are evaluated with the default protocol (100 trials, seed 0) on `id` and on the
suites the change targets, into results/rl2-ablations/<name>/ (``--evaluate``: run the evaluations first; they
are continued if present). The table: AUC [95% CI] per suite, and the difference to the reference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

# name -> (policy file, what changed, the suites it targets)
ABLATIONS = {
    "shipped recipe": ("runs/rl2-general/policy-150.pt", "-", ()),
    "demonstrations off": ("runs/rl2-mix/policy-150.pt", "stitching trials played without reading their demonstrations",
                           ("stitching", "stitching-paper")),
    "relabeling off": ("runs/rl2-abl-norelabel/policy.pt", "tiles keep their indices (no symbols)",
                       ("ood-large", "ood-xl", "ood-permuted")),
    "changes off": ("runs/rl2-abl-nochange/policy.pt", "no non-stationary trials (id + stitching)", ("nonstationary",)),
    "stitching maps off": ("runs/rl2-abl-nostitch/policy.pt", "no stitching trials (id + non-stationary)",
                           ("stitching", "stitching-paper")),
    "gamma 0.9": ("runs/rl2-abl-gamma09/policy.pt", "discount 0.9 instead of 0.99 (little cross-episode credit)",
                  ("ood-dense",)),
}
SUITES = ("id", "ood-large", "ood-xl", "ood-dense", "ood-permuted", "nonstationary", "stitching-paper", "stitching")
OUT = Path("results/rl2-ablations")


def _slug(name: str) -> str:
    return name.replace(" ", "-").replace(".", "")


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--evaluate", action="store_true")
    args = p.parse_args()
    if args.evaluate:
        for name, (policy, _, _) in ABLATIONS.items():
            out = OUT / _slug(name)
            cmd = [sys.executable, "-m", "icrl_bench.cli", "evaluate", "icrl_bench.training.rl2:rl2_agent",
                   "--agent-arg", f"path={policy}", "--suites", ",".join(SUITES), "--out", str(out), "--no-progress"]
            if (out / "run.json").exists():
                cmd.append("--resume")
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    results = {n: json.loads((OUT / _slug(n) / "results.json").read_text())["summary"] for n in ABLATIONS}
    ref = results["shipped recipe"]
    print("| run (150 updates, 9.8M steps each) | what changed | " + " | ".join(SUITES) + " |")
    print("|---|---|" + "---|" * len(SUITES))
    for name, (_, what, targets) in ABLATIONS.items():
        cells = []
        for suite in SUITES:
            m = results[name][suite]["auc"]
            cell = _ci(m) if name == "shipped recipe" else f"{m['value']:.3f} ({m['value'] - ref[suite]['auc']['value']:+.3f})"
            cells.append(f"**{cell}**" if suite in targets or suite == "id" and name != "shipped recipe" else cell)
        print(f"| {name} | {what} | " + " | ".join(cells) + " |")
    print("\n`nonstationary` before -> after the change (episodes to 90% of the pre-change rate; None: never): "
          + "; ".join(f"{n}: {r['nonstationary']['pre_change']:.2f} -> {r['nonstationary']['post_change']:.2f} "
                      f"({r['nonstationary']['recovery_episodes']})" for n, r in results.items()))


if __name__ == "__main__":
    main()
