"""`evaluate`: run an agent on suites into a results folder - resumable, parallel, deterministic.

Every finished trial is appended at once to ``OUT/parts/trials-<pid>.jsonl`` (flushed and fsynced), so a crash
or Ctrl-C loses nothing already finished, and ``resume=True`` runs only the missing trials. The run's settings
are stored in ``OUT/run.json``; resuming with other settings is an error, never a silent mix.
Trials are independent (own seeds), so results do not depend on ``workers``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import sys
import time
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, Sequence

from icrl_bench.protocol.metrics import SETTINGS as METRIC_SETTINGS
from icrl_bench.protocol.metrics import suite_metrics
from icrl_bench.protocol.records import TrialRecord
from icrl_bench.protocol.results import SCHEMA_VERSION, atomic_write, format_table, write_results
from icrl_bench.protocol.runner import ProtocolOptions, SettingError
from icrl_bench.protocol.suites import Suite, get_suite
from icrl_bench.protocol.workers import close_agent, part_file, play, play_in_workers, split_jobs


_RUN_TOKEN = uuid.uuid4().hex[:8]  # part files are per process: pid plus this token


class AgentRecipe(Protocol):
    """What `evaluate` needs of an agent specification (see `icrl_bench.agents.AgentSpec`); must pickle."""

    @property
    def label(self) -> str: ...

    @property
    def privileged(self) -> bool: ...

    def build(self) -> Any: ...

    def to_dict(self) -> dict[str, Any]: ...


class EvaluationError(RuntimeError):
    """A results folder that cannot be used as asked (settings differ, corrupt parts); nothing is deleted."""


def package_version() -> str:
    """The installed icrl-bench version."""
    from icrl_bench import __version__

    return __version__


@lru_cache(maxsize=64)
def _suite(name: str, task_entropy: int | None) -> Suite:
    """The installed suite, or (verification) the same suite on fresh tasks from another seed space."""
    suite = get_suite(name)
    return suite if task_entropy is None else dataclasses.replace(suite, entropy=task_entropy)


def run_config(
    recipe: AgentRecipe,
    suites: Sequence[str],
    trials: int | dict[str, int] | None,
    seed: int,
    options: ProtocolOptions,
    task_entropy: int | None = None,
) -> dict[str, Any]:
    """The settings that define a run (stored in run.json and results.json)."""
    described = {}
    for name in suites:
        suite = _suite(name, task_entropy)
        n = suite.n_trials if trials is None else trials[name] if isinstance(trials, dict) else trials
        if not 1 <= n <= suite.n_trials:
            raise SettingError(f"--trials must be between 1 and {suite.n_trials} for suite {name!r}, got {n}")
        described[name] = {**suite.describe(), "change_after": suite.change_after, "trials": n}
    agent = {**recipe.to_dict(), "label": recipe.label}
    extra = {} if task_entropy is None else {"task_entropy": task_entropy}
    return {
        **extra,
        "schema_version": SCHEMA_VERSION,
        "package_version": package_version(),
        "agent": agent,
        "suites": described,
        "seed": seed,
        "protocol": options.to_dict(),
        "metrics": dict(METRIC_SETTINGS),
    }


def load_finished(out: Path, repair: bool = False, config: dict[str, Any] | None = None) -> dict[tuple[str, int], TrialRecord]:
    """Finished trials from ``out/parts``.

    A last line without its newline is a write cut short by a crash: it is no finished trial, so it is
    ignored, and with `repair` cut from the file (so that appending goes on cleanly); that trial re-runs.
    With `config`, every record must belong to that run (suite, trial range, seeds, tasks, episode count).
    """
    done: dict[tuple[str, int], TrialRecord] = {}
    for path in sorted((out / "parts").glob("trials-*.jsonl")):
        text = path.read_text()
        if text and not text.endswith("\n"):
            print(f"note: {path} ends in an incomplete record (an interrupted write); that trial will be re-run", file=sys.stderr)
            text = text[: text.rfind("\n") + 1]
            if repair:
                path.write_text(text)
        for i, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                record = TrialRecord.from_dict(json.loads(line))
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                raise EvaluationError(f"{path}, line {i + 1} is corrupt ({e}); move the file away to re-run its trials") from None
            if config is not None:
                _check_belongs(record, config, f"{path}, line {i + 1}")
            key = (record.suite, record.trial)
            if key in done and _comparable(done[key]) != _comparable(record):
                raise EvaluationError(
                    f"trial {record.trial} of suite {record.suite!r} was recorded twice with different results: "
                    "the agent is not deterministic given its seed"
                )
            done[key] = record
    return done


def _check_belongs(record: TrialRecord, config: dict[str, Any], where: str) -> None:
    described = config["suites"].get(record.suite)
    problem = None
    if described is None:
        problem = f"suite {record.suite!r} is not part of this run"
    elif not 0 <= record.trial < described["trials"]:
        problem = f"trial {record.trial} is beyond this run's {described['trials']} trials"
    else:
        suite = _suite(record.suite, config.get("task_entropy"))
        if (record.env_seed, record.agent_seed) != suite.trial_seeds(config["seed"], record.trial):
            problem = f"its seeds are not those of evaluation seed {config['seed']}"
        elif record.task_ids != [t.task_id for t in suite.tasks[record.trial]]:
            problem = "its tasks are not the suite's"
        elif len(record.episodes) != suite.n_episodes:
            problem = f"it has {len(record.episodes)} episodes, the suite {suite.n_episodes}"
    if problem:
        raise EvaluationError(f"{where} does not belong to this run: {problem}; move that file away")


def _comparable(record: TrialRecord) -> dict:
    d = record.to_dict()
    d.pop("wall_time")
    return d


# Protocol options that change how a run is played but not its results: a resume may change them.
RESUMABLE_CHANGES = ("step_timeout", "batch_size")


def _result_settings(config: dict[str, Any]) -> dict[str, Any]:
    out = dict(config)
    out["protocol"] = {k: v for k, v in config.get("protocol", {}).items() if k not in RESUMABLE_CHANGES}
    return out


def _prepare(out: Path, config: dict[str, Any], resume: bool, overwrite: bool = False) -> dict[tuple[str, int], TrialRecord]:
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        raise EvaluationError(f"--out {out} is a file, not a folder: choose another --out")
    run_file = out / "run.json"
    if resume and not run_file.exists() and not (out / "parts").exists():
        raise EvaluationError(f"nothing to resume in {out}: it holds no evaluation (run without --resume to start one)")
    if overwrite and (run_file.exists() or (out / "parts").exists()):
        _clear(out)
    if run_file.exists() or (out / "parts").exists():
        if not run_file.exists():
            raise EvaluationError(f"{out} has finished trials but no run.json: it was not made by this version; choose another --out")
        try:
            stored = json.loads(run_file.read_text())
        except json.JSONDecodeError as e:
            raise EvaluationError(f"{run_file} is corrupt ({e}); choose another --out") from None
        old, new = _result_settings(stored), _result_settings(config)
        differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        finished = any(path.stat().st_size for path in (out / "parts").glob("trials-*.jsonl")) if (out / "parts").is_dir() else False
        if differ and not finished:  # a run that failed before its first trial: nothing to lose, say so
            print(f"note: {out} held a run with other settings ({', '.join(differ)}) but no finished trial; "
                  "starting afresh with the new settings", file=sys.stderr)  # fmt: skip
            _clear(out, say=False)
        elif not resume:
            raise EvaluationError(f"{out} already holds an evaluation: pass --resume to continue it, --overwrite to "
                                  "discard it, or choose another --out")  # fmt: skip
        elif differ:
            raise EvaluationError(
                f"{out} holds a run with different settings ({', '.join(differ)}); resume with the same settings, "
                "pass --overwrite to discard its finished trials, or choose another --out"
            )
        else:
            done = load_finished(out, repair=True, config=config)
            atomic_write(run_file, json.dumps(config, indent=1))  # e.g. a new step_timeout
            return done
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EvaluationError(f"cannot make the results folder {out}: {e.strerror}; choose another --out") from None
    atomic_write(run_file, json.dumps(config, indent=1))  # before any trial: a folder with parts has a run.json
    (out / "parts").mkdir(exist_ok=True)
    return {}


RESULT_FILES = ("run.json", "results.json", "episodes.csv", "summary.csv", "curves.png")


def _clear(out: Path, say: bool = True) -> None:
    """Remove an evaluation's own files from `out` (never anything else there), saying what goes."""
    parts = sorted((out / "parts").glob("trials-*.jsonl")) if (out / "parts").is_dir() else []
    if say:
        print(f"note: removing the evaluation in {out} ({len(parts)} part file(s) of finished trials)", file=sys.stderr)
    for path in parts:
        path.unlink()
    if (out / "parts").is_dir() and not any((out / "parts").iterdir()):
        (out / "parts").rmdir()
    for name in RESULT_FILES:
        (out / name).unlink(missing_ok=True)


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most every 0.2 s (evaluation trials, training updates)."""

    def __init__(self, total: int, done: int, label: str, enabled: bool, unit: str = "trials") -> None:
        self.total, self.done, self.label, self.enabled, self.unit = total, done, label, enabled, unit
        self.start, self.last = time.perf_counter(), 0.0

    def update(self, n: int = 1, extra: str = "") -> None:
        """`n` more done; `extra` is shown after the time (a loss, say)."""
        self.done += n
        now = time.perf_counter()
        if self.enabled and (now - self.last > 0.2 or self.done == self.total):
            self.last = now
            filled = int(30 * self.done / max(self.total, 1))
            sys.stderr.write(f"\r{self.label}: [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} "
                             f"{self.unit} {now - self.start:6.1f} s{extra}")  # fmt: skip
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


class Forecast:
    """After the first batch step of a batched agent's run, say how long the run will take at most at that pace.

    A trial's steps are only bounded (every episode to its step limit: a looping agent), so the forecast is an
    upper bound: the first step's seconds times the most steps a trial of each chunk can take, summed over the
    chunks each worker plays (a batch of trials plays side by side, one agent call per step; the first step's batch
    size is taken as every batch's). A step at a long context may cost more than the first: a pace, not a promise."""

    def __init__(self, chunks: Sequence[tuple[str, list[int]]], workers: int, suite_of: Any, enabled: bool) -> None:
        self.chunks, self.workers, self.suite_of, self.enabled = chunks, workers, suite_of, enabled
        self.said = False

    def bound(self, suite_name: str, trial: int) -> int:
        suite = self.suite_of(suite_name)
        return sum(suite.task_for(trial, e).max_steps for e in range(suite.n_episodes))

    def __call__(self, suite_name: str, seconds: float, trials: int) -> None:
        if self.said or not self.enabled or trials < 2:  # a one-trial-at-a-time agent: its steps are not batch steps
            return
        self.said = True
        steps = sum(math.ceil(len(ks) / trials) * max(self.bound(s, k) for k in ks) for s, ks in self.chunks)
        first = self.bound(suite_name, self.chunks[0][1][0]) if self.chunks else 0
        hours = seconds * steps / self.workers / 3600
        sys.stderr.write(f"\nnote: first step {seconds:.2f} s for {trials} trial(s) at once (set-up included); a trial "
                         f"of {suite_name!r} has at most {first:,} steps: at this pace the run takes at most "
                         f"{_duration(hours * 3600)} ({self.workers} worker(s)); agents that reach goals take far "
                         "fewer steps\n")  # fmt: skip
        sys.stderr.flush()


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def evaluate(
    recipe: AgentRecipe,
    suites: Sequence[str],
    out: str | os.PathLike,
    trials: int | None = None,
    seed: int = 0,
    options: ProtocolOptions | None = None,
    workers: int = 1,
    resume: bool = False,
    progress: bool = True,
    task_entropy: int | None = None,
    in_process: bool | None = None,
    overwrite: bool = False,
    ray: Any = None,
    forecast: bool = False,
) -> dict[str, Any]:
    """Evaluate the agent on `suites` into the folder `out`; returns the results (as written to results.json).

    `workers`: processes playing trials (results never depend on it). `in_process`: play in this process (default
    when `workers` is 1); otherwise trials are played in spawned worker processes, so that an agent that kills its
    process is reported with the suite and trial it was playing (the CLI always does this). `overwrite`: discard an
    earlier evaluation in `out`. `task_entropy` replaces the suites' tasks by fresh ones from that seed space; such
    results do not match the installed suites' hashes and cannot be submitted. `ray`: a
    `protocol.ray_backend.RayBackend` plays the trials on `workers` Ray actors instead (the same records).
    `forecast`: after the first batch step, say on stderr how long the run takes at most at that pace (`Forecast`).
    """
    if not isinstance(workers, int) or workers < 1:
        raise SettingError(f"workers must be an integer of at least 1, got {workers!r}")
    in_process = workers == 1 and ray is None if in_process is None else in_process
    if in_process and ray is not None:
        raise SettingError("in_process plays in this one process: it cannot be combined with the Ray backend")
    if in_process and workers != 1:
        raise SettingError(f"in_process needs workers=1, got workers={workers}")
    options = options or ProtocolOptions()
    out = Path(out)
    config = run_config(recipe, suites, trials, seed, options, task_entropy)
    done = _prepare(out, config, resume, overwrite)
    todo = [(s, [k for k in range(d["trials"]) if (s, k) not in done]) for s, d in config["suites"].items()]
    todo = [(s, ks) for s, ks in todo if ks]
    total = sum(d["trials"] for d in config["suites"].values())
    bar = ProgressBar(total, total - sum(len(ks) for _, ks in todo), f"evaluate {recipe.label}", progress)
    suite_of = functools.partial(_suite, task_entropy=task_entropy)
    chunks = split_jobs(todo, workers)
    forecast_note = Forecast(chunks, workers, suite_of, forecast)
    if in_process:
        if todo:  # one agent for every suite: the bar moves and Ctrl-C stops between trials
            agent = recipe.build()
            try:
                with part_file(out / "parts" / f"trials-{os.getpid()}-{_RUN_TOKEN}.jsonl") as sink:
                    play(agent, bool(recipe.privileged), todo, suite_of, seed, options, sink,
                         on_trial=lambda s, k: bar.update(), on_first_step=forecast_note)  # fmt: skip
            finally:
                close_agent(agent)
    elif todo and ray is not None:
        from icrl_bench.protocol.ray_backend import play_on_ray

        with part_file(out / "parts" / f"trials-{os.getpid()}-{_RUN_TOKEN}.jsonl") as sink:
            play_on_ray(recipe, todo, seed, options, suite_of, workers, ray, sink, bar.update)
    elif todo:
        play_in_workers(recipe, chunks, seed, options, str(out / "parts"), suite_of, workers, _RUN_TOKEN, bar.update,
                        forecast_note)  # fmt: skip
    return finalise(out, config, task_entropy)


def finalise(out: Path, config: dict[str, Any], task_entropy: int | None = None) -> dict[str, Any]:
    """Summarise the finished trials of `out` into results.json, the CSVs and curves.png."""
    done = load_finished(out, config=config)
    records: dict[str, list[TrialRecord]] = {}
    summary: dict[str, Any] = {}
    for name, d in config["suites"].items():
        missing = [k for k in range(d["trials"]) if (name, k) not in done]
        if missing:
            raise EvaluationError(f"suite {name!r} is missing trials {missing[:10]}: run again with --resume")
        records[name] = [done[(name, k)] for k in range(d["trials"])]
        summary[name] = suite_metrics(records[name], _suite(name, task_entropy).change_after)
    write_results(out, config, records, summary)
    results = dict(config)
    results["summary"] = summary
    return results


def print_table(results: dict[str, Any]) -> None:
    """Print the headline table of a results dict."""
    print(format_table(results["summary"], results["agent"]["label"]))
