"""Metrics of a suite's trial records, with 95% bootstrap confidence intervals over trials (rliable's advice).

Every number is recomputed from the per-episode records alone, so anyone holding a results file can check it.

- ``curve``: success rate per episode index (mean over trials), with a CI band.
- ``auc`` (the headline): mean success over the whole trial, i.e. the area under the curve divided by its length.
- ``iqm_auc``: interquartile mean of the per-trial AUCs (robust to a few outlier trials).
- ``first``: success in episode 1; ``last10``: mean success over the last 10 episodes (all, if fewer).
- ``episodes_to_first_success``: 1-based index of the first successful episode, averaged over trials; a trial
  that never succeeds counts as ``n_episodes + 1``; ``never_solved`` is the fraction of such trials.
- ``regret``: per trial, the sum over episodes of (optimal success probability from that start - success).
- ``regret``: can be slightly negative on slippery maps, where a lucky agent beats the optimal *expected* success.
- ``path_ratio``: steps of successful episodes divided by the shortest path from their start (1.0 is optimal),
  averaged per trial over its successful episodes, then over the trials that had one.
- Non-stationary suites: ``pre_change`` = mean success over the 5 episodes before the change, ``post_change`` =
  success in the first episode after it, ``drop`` = their difference, ``recovery_episodes`` = episodes after the
  change until the curve first reaches 90% of ``pre_change`` again (None if it never does, or if ``pre_change``
  is below 0.5: there is no learnt level to recover then).
- ``invalid_actions`` (replaced by random ones, when the protocol allows), ``steps``, ``wall_time``,
  ``steps_per_second``.
Intervals: percentile bootstrap over trials, 2,000 resamples, a fixed resampling seed (results are reproducible).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from icrl_bench.protocol.records import TrialRecord

N_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0
RECOVERY_FRACTION = 0.9
PRE_CHANGE_WINDOW = 5
MIN_PRE_CHANGE = 0.5
SETTINGS = {"n_bootstrap": N_BOOTSTRAP, "bootstrap_seed": BOOTSTRAP_SEED, "ci": 0.95,
            "recovery_fraction": RECOVERY_FRACTION, "pre_change_window": PRE_CHANGE_WINDOW}  # fmt: skip


def interquartile_mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean of the middle 50% of `values` along `axis` (the 25% lowest and highest dropped, as rliable)."""
    v = np.sort(values, axis=axis)
    n = v.shape[axis]
    lo, hi = int(np.floor(0.25 * n)), n - int(np.floor(0.25 * n))
    return np.take(v, np.arange(lo, hi), axis=axis).mean(axis=axis)


def bootstrap_ci(per_trial: np.ndarray, statistic: Any = None, seed: int = BOOTSTRAP_SEED) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile-bootstrap interval of `statistic` (default: the mean) over the first axis (trials)."""
    per_trial = np.asarray(per_trial, dtype=float)
    n = len(per_trial)
    rng = np.random.default_rng(seed)
    idx = rng.integers(n, size=(N_BOOTSTRAP, n))
    samples = per_trial[idx]  # [resample, trial, ...]
    stats = samples.mean(axis=1) if statistic is None else statistic(samples, axis=1)
    return np.percentile(stats, 2.5, axis=0), np.percentile(stats, 97.5, axis=0)


def _with_ci(per_trial: np.ndarray, statistic: Any = None) -> dict[str, float]:
    point = per_trial.mean() if statistic is None else statistic(per_trial, axis=0)
    lo, hi = bootstrap_ci(per_trial, statistic)
    return {"value": float(point), "ci_low": float(lo), "ci_high": float(hi)}


def suite_metrics(records: Sequence[TrialRecord], change_after: int | None = None) -> dict[str, Any]:
    """All metrics of one suite from its trial records (see the module docstring)."""
    if not records:
        raise ValueError("no trial records to summarise")
    n_eps = {len(r.episodes) for r in records}
    if len(n_eps) != 1:
        raise ValueError(f"trials have different numbers of episodes: {sorted(n_eps)}")
    (n,) = n_eps
    success = np.array([[e.success for e in r.episodes] for r in records], dtype=float)
    optimal = np.array([[e.optimal for e in r.episodes] for r in records], dtype=float)
    steps = np.array([[e.steps for e in r.episodes] for r in records], dtype=float)
    shortest = np.array([[e.shortest for e in r.episodes] for r in records], dtype=float)
    invalid = sum(e.invalid_actions for r in records for e in r.episodes)

    curve_lo, curve_hi = bootstrap_ci(success)
    per_trial_auc = success.mean(axis=1)
    first_success = np.where(success.any(axis=1), success.argmax(axis=1) + 1, n + 1)
    won = success > 0
    with np.errstate(invalid="ignore"):
        per_trial_ratio = np.where(won, steps / shortest, 0.0).sum(axis=1) / won.sum(axis=1)
    wall = float(sum(r.wall_time for r in records))
    out: dict[str, Any] = {
        "trials": len(records),
        "episodes": n,
        "curve": success.mean(axis=0).tolist(),
        "curve_ci_low": np.asarray(curve_lo).tolist(),
        "curve_ci_high": np.asarray(curve_hi).tolist(),
        "auc": _with_ci(per_trial_auc),
        "iqm_auc": _with_ci(per_trial_auc, interquartile_mean),
        "first": _with_ci(success[:, 0]),
        "last10": _with_ci(success[:, -min(10, n) :].mean(axis=1)),
        "episodes_to_first_success": _with_ci(first_success.astype(float)),
        "never_solved": float((~success.any(axis=1)).mean()),
        "regret": _with_ci((optimal - success).sum(axis=1)),
        "path_ratio": _with_ci(per_trial_ratio[~np.isnan(per_trial_ratio)]) if won.any() else None,
        "invalid_actions": int(invalid),
        "steps": int(steps.sum()),
        "wall_time": wall,
        "steps_per_second": float(steps.sum() / wall) if wall > 0 else None,
    }
    if change_after is not None:
        out.update(_change_metrics(success, change_after))
    return out


def _change_metrics(success: np.ndarray, change_after: int) -> dict[str, Any]:
    curve = success.mean(axis=0)
    window = success[:, max(0, change_after - PRE_CHANGE_WINDOW) : change_after].mean(axis=1)
    pre = float(window.mean())
    post = float(curve[change_after])
    recovered = np.flatnonzero(curve[change_after:] >= RECOVERY_FRACTION * pre)
    return {
        "pre_change": pre,
        "post_change": post,
        "drop": _with_ci(window - success[:, change_after]),
        "recovery_episodes": int(recovered[0]) if len(recovered) and pre >= MIN_PRE_CHANGE else None,
    }
