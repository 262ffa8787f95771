"""`validate_results`: is a results file complete, consistent with the installed suites, and possible?

Every problem is listed (not only the first), each naming the file, the suite, the trial and episode, and what
is wrong. The checks:
- schema: version, required fields and their types;
- suites: known names, the installed version and task-list hash, the number of trials, every trial exactly once,
  its task ids and seeds as the suite and the evaluation seed define them;
- episodes: the right number per trial; success 0/1; steps between 1 and the step limit; a start tile that is a
  start of that episode's map *and* the one the environment's random stream gives (each episode consumes one
  draw per step, so the starts are fully determined by the seed and the step counts); the recorded shortest
  path and optimal success equal the map's; a success in fewer steps than the shortest path, a truncation
  before the step limit, or a fall into a hole before any hole can be reached is impossible; forced or invalid
  actions only where the protocol options allow them;
- under the paper's forced exploration, each episode's forced actions replayed from the agent seed;
- no more successes than the optimal policy could plausibly reach (a binomial bound: slippery suites);
- summary: every number recomputed from the records matches the claimed one.

What no check can see: which episodes of a plausible trial succeeded (turning a fall into a success with
plausible step counts leaves every record possible). Only verification - a re-run on fresh maps with a secret
seed - tests outcomes, which is why the board ranks verified entries first.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterator

import numpy as np

from gymnasium.utils import seeding

from icrl_bench.envs.dynamics import compile_task
from icrl_bench.envs.task import TaskSpec, goal_distances
from icrl_bench.protocol.metrics import SETTINGS as METRIC_SETTINGS
from icrl_bench.protocol.metrics import suite_metrics
from icrl_bench.protocol.records import EPISODE_FIELDS, TRIAL_FIELDS, EpisodeRecord, TrialRecord
from icrl_bench.protocol.results import SCHEMA_VERSION
from icrl_bench.protocol.runner import (
    ProtocolOptions,
    _optimal_from,
    forced_exploration_rng,
    paper_exploration_schedule,
)
from icrl_bench.protocol.suites import SUITES, Suite

REQUIRED = {
    "schema_version": int,
    "package_version": str,
    "agent": dict,
    "suites": dict,
    "seed": int,
    "protocol": dict,
    "metrics": dict,
    "records": dict,
    "summary": dict,
}
TOLERANCE = 1e-9


def _hole_distances(task: TaskSpec) -> tuple[int | None, ...]:
    """Fewest moves from each tile into any hole (walking only on non-terminal tiles)."""
    return goal_distances(task.rows, target="H")


def _type_ok(value: Any, expected: Any) -> bool:
    if isinstance(value, bool) and expected is not bool and not (isinstance(expected, tuple) and bool in expected):
        return False
    return isinstance(value, expected)


def _replayed_starts(suite: Suite, trial: int, env_seed: int, steps: list[int]) -> Iterator[int]:
    """The start tile of each episode, replaying the env's random stream (one draw per reset and per step)."""
    rng, _ = seeding.np_random(env_seed)
    for k, n in enumerate(steps):
        yield compile_task(suite.task_for(trial, k)).sample_start(rng.random())
        rng.random(n)


def _compare(claimed: Any, actual: Any, path: str, out: list[str]) -> None:
    if isinstance(actual, dict):
        if not isinstance(claimed, dict):
            out.append(f"summary {path} should be an object")
            return
        for key in actual:
            if key not in claimed:
                out.append(f"summary {path}.{key} is missing")
            else:
                _compare(claimed[key], actual[key], f"{path}.{key}", out)
        for key in set(claimed) - set(actual):
            out.append(f"summary {path}.{key} is not a metric")
    elif isinstance(actual, list):
        if not isinstance(claimed, list) or len(claimed) != len(actual):
            out.append(f"summary {path} should be a list of {len(actual)} numbers")
            return
        for i, (c, a) in enumerate(zip(claimed, actual)):
            _compare(c, a, f"{path}[{i}]", out)
    elif actual is None or isinstance(actual, str):
        if claimed != actual:
            out.append(f"summary {path} is {claimed!r}, recomputed {actual!r}")
    else:
        ok = isinstance(claimed, (int, float)) and not isinstance(claimed, bool) and math.isclose(
            claimed, actual, rel_tol=TOLERANCE, abs_tol=TOLERANCE
        )
        if not ok:
            out.append(f"summary {path} is {claimed!r} but the records give {actual!r}")


def validate_results(data: Any, file: str = "results.json") -> list[str]:
    """Every problem of a results dict (empty when valid); each message starts with `file`."""
    try:
        return _validate_results(data, file)
    except Exception as e:  # malformed beyond what the checks anticipate: still a rejection, with the reason
        return [f"{file}: could not be checked ({type(e).__name__}: {e}); regenerate it with icrl-bench evaluate"]


def _validate_results(data: Any, file: str) -> list[str]:
    problems: list[str] = []

    def add(message: str) -> None:
        problems.append(f"{file}: {message}")

    if not isinstance(data, dict):
        add("not a JSON object: give the results.json that `icrl-bench evaluate` wrote")
        return problems
    for key, kind in REQUIRED.items():
        if key not in data:
            add(f"required field '{key}' is missing")
        elif not _type_ok(data[key], kind):
            add(f"field '{key}' should be {kind.__name__}, got {type(data[key]).__name__}")
    if problems:
        return problems
    if data["schema_version"] != SCHEMA_VERSION:
        add(f"schema_version {data['schema_version']} is not the supported {SCHEMA_VERSION}")
        return problems
    for key in sorted(set(data) - set(REQUIRED)):
        add(f"unknown field '{key}' (results of `icrl-bench evaluate` have exactly {sorted(REQUIRED)})")
    if not re.fullmatch(r"\d+\.\d+\.\d+\S*", data["package_version"]):
        add(f"package_version {data['package_version']!r} is not a version")
    protocol = data["protocol"]
    _validate_agent_and_protocol(data["agent"], protocol, add)
    if data["metrics"] != METRIC_SETTINGS:
        add(f"'metrics' settings {data['metrics']!r} differ from this version's {METRIC_SETTINGS!r}")
    for suite_name, described in data["suites"].items():
        _validate_suite(suite_name, described, data, protocol, add)
    for suite_name in set(data["records"]) - set(data["suites"]):
        add(f"records of suite '{suite_name}', which the results do not declare")
    for suite_name in set(data["summary"]) - set(data["suites"]):
        add(f"summary of suite '{suite_name}', which the results do not declare")
    return problems


AGENT_FIELDS = {"name": (str, type(None)), "kwargs": dict, "command": (str, type(None)), "privileged": bool, "label": str}
PROTOCOL_FIELDS = {"forced_exploration": str, "step_timeout": (int, float, type(None)), "batch_size": int,
                   "on_invalid_action": str}  # fmt: skip
SUITE_FIELDS = {"name", "version", "hash", "n_episodes", "change_after", "trials"}


def _validate_agent_and_protocol(agent: dict, protocol: dict, add: Any) -> None:
    if set(agent) != set(AGENT_FIELDS) or any(not _type_ok(agent[k], t) for k, t in AGENT_FIELDS.items()):
        add(f"'agent' must have exactly {sorted(AGENT_FIELDS)} with the right types, got {agent!r}")
    elif (agent["name"] is None) == (agent["command"] is None):
        add("'agent' must name either an agent or a command")
    if set(protocol) != set(PROTOCOL_FIELDS) or any(not _type_ok(protocol[k], t) for k, t in PROTOCOL_FIELDS.items()):
        add(f"'protocol' must have exactly {sorted(PROTOCOL_FIELDS)} with the right types, got {protocol!r}")
        return
    try:
        ProtocolOptions(**protocol)
    except ValueError as e:
        add(f"'protocol': {e}")


def _validate_suite(name: str, described: Any, data: dict, protocol: dict, add: Any) -> None:
    if name not in SUITES:
        add(f"suite '{name}' is not an installed suite ({', '.join(SUITES)})")
        return
    suite = SUITES[name]
    if not isinstance(described, dict) or set(described) != SUITE_FIELDS:
        add(f"suite '{name}': its description should be an object with exactly {sorted(SUITE_FIELDS)}")
        return
    for key, expected in (("name", suite.name), ("version", suite.version), ("hash", suite.hash),
                          ("n_episodes", suite.n_episodes), ("change_after", suite.change_after)):  # fmt: skip
        if described.get(key) != expected:
            add(f"suite '{name}': {key} is {described.get(key)!r}, the installed suite has {expected!r}")
    n_trials = described.get("trials")
    if not _type_ok(n_trials, int) or not 1 <= n_trials <= suite.n_trials:
        add(f"suite '{name}': trials should be an integer in 1..{suite.n_trials}, got {n_trials!r}")
        return
    records = data["records"].get(name)
    if not isinstance(records, list):
        add(f"suite '{name}': records are missing")
        return
    seen: dict[int, int] = {}
    parsed: list[TrialRecord] = []
    for i, raw in enumerate(records):
        record = _validate_trial(suite, raw, i, data["seed"], protocol, add)
        if record is None:
            continue
        if record.trial in seen:
            add(f"suite '{name}', trial {record.trial}: recorded twice (entries {seen[record.trial]} and {i})")
            continue
        seen[record.trial] = i
        parsed.append(record)
    missing = sorted(set(range(n_trials)) - set(seen))
    extra = sorted(set(seen) - set(range(n_trials)))
    if missing:
        add(f"suite '{name}': trials {missing[:10]}{' ...' if len(missing) > 10 else ''} are missing")
    if extra:
        add(f"suite '{name}': trials {extra[:10]} are beyond the declared {n_trials}")
    claimed = data["summary"].get(name)
    if claimed is None:
        add(f"suite '{name}': the summary is missing")
    elif not missing and not extra and len(parsed) == n_trials:
        parsed.sort(key=lambda r: r.trial)
        _check_success_ceiling(suite, parsed, add)
        out: list[str] = []
        _compare(claimed, suite_metrics(parsed, suite.change_after), name, out)
        for message in out:
            add(message)


def _validate_trial(suite: Suite, raw: Any, index: int, seed: int, protocol: dict, add: Any) -> TrialRecord | None:
    where = f"suite '{suite.name}', record {index}"
    if not isinstance(raw, dict):
        add(f"{where}: should be an object")
        return None
    bad = [k for k, kind in TRIAL_FIELDS.items() if k not in raw or not _type_ok(raw[k], kind)]
    if bad:
        add(f"{where}: fields {bad} are missing or of the wrong type")
        return None
    trial = raw["trial"]
    where = f"suite '{suite.name}', trial {trial}"
    if raw["suite"] != suite.name:
        add(f"{where}: its 'suite' field says {raw['suite']!r}")
    if not 0 <= trial < suite.n_trials:
        add(f"{where}: no such trial in the suite (0..{suite.n_trials - 1})")
        return None
    if (raw["env_seed"], raw["agent_seed"]) != suite.trial_seeds(seed, trial):
        add(f"{where}: its seeds are not the ones evaluation seed {seed} gives this trial")
    tasks = suite.tasks[trial]
    if raw["task_ids"] != [t.task_id for t in tasks]:
        add(f"{where}: its task ids are not the suite's tasks for this trial")
    episodes = raw["episodes"]
    if len(episodes) != suite.n_episodes:
        add(f"{where}: {len(episodes)} episodes, the suite has {suite.n_episodes}")
        return None
    parsed = []
    for k, e in enumerate(episodes):
        at = f"{where}, episode {k}"
        if not isinstance(e, dict) or set(e) != set(EPISODE_FIELDS):
            add(f"{at}: should have exactly the fields {sorted(EPISODE_FIELDS)}")
            return None
        wrong = [f for f, kind in EPISODE_FIELDS.items() if not _type_ok(e[f], kind)]
        if wrong:
            add(f"{at}: fields {wrong} have the wrong type")
            return None
        parsed.append(EpisodeRecord(**e))
    if not math.isfinite(raw["wall_time"]) or raw["wall_time"] < 0:
        add(f"{where}: wall_time {raw['wall_time']!r} is not a finite, non-negative number of seconds")
    record = TrialRecord(suite.name, trial, raw["env_seed"], raw["agent_seed"], raw["task_ids"], parsed,
                         float(raw["wall_time"]))  # fmt: skip
    _check_episodes(suite, record, protocol, where, add)
    _check_forced_exploration(suite, record, protocol, where, add)
    return record


def _check_forced_exploration(suite: Suite, record: TrialRecord, protocol: dict, where: str, add: Any) -> None:
    """Under the paper's schedule the forced actions of each episode follow from the agent seed: replay them."""
    if protocol.get("forced_exploration") != "paper":
        return  # under "none", any forced action is already an error (_check_episodes)
    if suite.greedy_only:  # e.g. stitching, as in the paper
        for k, e in enumerate(record.episodes):
            if e.forced_random:
                add(f"{where}, episode {k}: forced random actions on a greedy-only suite (stitching suites are always "
                    "played greedily)")  # fmt: skip
        return
    if any(e.invalid_actions for e in record.episodes):
        return  # replaced invalid actions draw from the same stream at steps we do not know
    rng = forced_exploration_rng(record.agent_seed)
    for k, (e, p) in enumerate(zip(record.episodes, paper_exploration_schedule(suite))):
        forced = 0
        for _ in range(max(e.steps, 0)):
            if rng.random() >= p:
                forced += 1
                rng.randrange(4)
        if forced != e.forced_random:
            add(f"{where}, episode {k}: {e.forced_random} forced random actions, the schedule gives {forced}")
            return


def _check_success_ceiling(suite: Suite, records: list[TrialRecord], add: Any) -> None:
    """No agent beats the optimal policy by more than chance: successes <= expected optimal + 4 sigma + 1."""
    p = np.clip([e.optimal for r in records for e in r.episodes], 0.0, 1.0)  # bad values are flagged per episode
    successes = sum(e.success for r in records for e in r.episodes)
    bound = p.sum() + 4 * math.sqrt(float((p * (1 - p)).sum())) + 1
    if successes > bound:
        add(f"suite '{suite.name}': {successes} successes, more than the optimal policy could plausibly reach ({bound:.1f})")


def _check_episodes(suite: Suite, record: TrialRecord, protocol: dict, where: str, add: Any) -> None:
    steps = [e.steps for e in record.episodes]
    starts = list(_replayed_starts(suite, record.trial, record.env_seed, [max(s, 0) for s in steps]))
    for k, e in enumerate(record.episodes):
        at = f"{where}, episode {k}"
        task = suite.task_for(record.trial, k)
        if e.success not in (0, 1):
            add(f"{at}: success must be 0 or 1, got {e.success}")
        if not 1 <= e.steps <= task.max_steps:
            add(f"{at}: {e.steps} steps, outside 1..{task.max_steps} (the step limit)")
            continue
        if e.start != starts[k]:
            add(f"{at}: start tile {e.start}, but the environment's random stream puts it on {starts[k]}")
            continue
        if e.shortest != task.goal_distances[e.start]:
            add(f"{at}: shortest path {e.shortest}, the map's is {task.goal_distances[e.start]}")
        if not math.isclose(e.optimal, _optimal_from(task)[e.start], abs_tol=TOLERANCE):
            add(f"{at}: optimal success {e.optimal}, the map's is {_optimal_from(task)[e.start]}")
        # Each step moves at most one tile, slippery or not: these bounds hold on every map.
        if e.success:
            if e.truncated:
                add(f"{at}: a success cannot also be a truncation")
            if e.steps < task.goal_distances[e.start]:  # type: ignore[operator]
                add(f"{at}: success in {e.steps} steps, fewer than the shortest path {task.goal_distances[e.start]}")
        elif e.truncated:
            if e.steps != task.max_steps:
                add(f"{at}: truncated after {e.steps} steps, but the step limit is {task.max_steps}")
        else:  # the episode ended in a hole
            reach = _hole_distances(task)[e.start]
            if reach is None:
                add(f"{at}: fell into a hole, but no hole can be reached from start {e.start}")
            elif e.steps < reach:
                add(f"{at}: fell into a hole after {e.steps} steps, but the nearest is {reach} steps away")
        if e.forced_random > e.steps or (protocol.get("forced_exploration") == "none" and e.forced_random):
            add(f"{at}: {e.forced_random} forced random actions, impossible under forced_exploration="
                f"{protocol.get('forced_exploration')!r}")  # fmt: skip
        if e.invalid_actions > e.steps or (protocol.get("on_invalid_action") == "error" and e.invalid_actions):
            add(f"{at}: {e.invalid_actions} invalid actions, impossible under on_invalid_action="
                f"{protocol.get('on_invalid_action')!r}")  # fmt: skip
