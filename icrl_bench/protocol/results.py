"""The results folder of an evaluation, and the terminal table.

    results.json   everything needed to recompute every number and to submit to the leaderboard:
                   agent and options, suites (names, versions, hashes, trials), evaluation seed, protocol
                   options, package version, every trial's per-episode records, and the summary metrics
    episodes.csv   one row per episode
    summary.csv    one row per suite and metric (value and 95% CI)
    curves.png     success per episode with CI bands, against the baselines shipped with the package
    parts/         per-process JSON lines of finished trials, written as they finish (what --resume reads)
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Mapping

from icrl_bench.protocol.records import EPISODES_CSV_COLUMNS, TrialRecord, episode_rows
from icrl_bench.protocol.suites import get_suite

SCHEMA_VERSION = 1
BASELINE_CURVES = Path(__file__).with_name("baseline_curves.json")
HEADLINE_METRICS = ("auc", "iqm_auc", "first", "last10", "episodes_to_first_success", "regret", "drop")


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file, so that a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_results(out: Path, config: Mapping[str, Any], records: Mapping[str, list[TrialRecord]], summary: Mapping[str, Any]) -> None:
    """Write results.json, episodes.csv, summary.csv and curves.png into `out`."""
    results = dict(config)
    results["records"] = {s: [r.to_dict() for r in recs] for s, recs in records.items()}
    results["summary"] = summary
    atomic_write(out / "results.json", json.dumps(results, separators=(",", ":")))

    with open(out / "episodes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(EPISODES_CSV_COLUMNS)
        for suite, recs in records.items():
            for r in recs:
                w.writerows(episode_rows(r, get_suite(suite)))

    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["suite", "metric", "value", "ci_low", "ci_high"])
        for suite, metrics in summary.items():
            for name, v in metrics.items():
                if isinstance(v, dict):
                    w.writerow([suite, name, v["value"], v["ci_low"], v["ci_high"]])
                elif not isinstance(v, list):
                    w.writerow([suite, name, v, "", ""])

    from icrl_bench.protocol.plotting import draw_curves

    draw_curves(summary, out / "curves.png", config["agent"]["label"], load_baseline_curves())


def load_baseline_curves() -> dict[str, dict[str, Any]]:
    """The baselines' success curves shipped with the package (baseline -> suite -> {"curve": [...]})."""
    if not BASELINE_CURVES.exists():
        return {}
    return json.loads(BASELINE_CURVES.read_text())


def format_table(summary: Mapping[str, Mapping[str, Any]], label: str) -> str:
    """A readable table of the headline numbers."""

    def ci(m: Any) -> str:
        return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]" if m else ""

    lines = [f"agent: {label}", f"{'suite':16} {'AUC [95% CI]':24} {'IQM':>6} {'first':>6} {'last10':>7} {'regret':>7} {'steps/s':>9}"]
    for suite, m in summary.items():
        sps = m.get("steps_per_second")
        lines.append(
            f"{suite:16} {ci(m['auc']):24} {m['iqm_auc']['value']:6.3f} {m['first']['value']:6.3f} "
            f"{m['last10']['value']:7.3f} {m['regret']['value']:7.2f} {sps if sps is None else format(sps, '9,.0f')}"
        )
        if "drop" in m:
            lines.append(
                f"{'':16} change: {m['pre_change']:.2f} -> {m['post_change']:.2f} (drop {ci(m['drop'])}), "
                + ("not recovered within the trial" if m["recovery_episodes"] is None
                   else f"recovered after {m['recovery_episodes']} episodes")
            )
    return "\n".join(lines)
