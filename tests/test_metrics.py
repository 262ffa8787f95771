"""Golden tests: every metric on hand-made records with numbers worked out by hand."""

import numpy as np
import pytest

from icrl_bench.protocol.metrics import bootstrap_ci, interquartile_mean, suite_metrics
from icrl_bench.protocol.records import EpisodeRecord, TrialRecord


def trial(successes, steps=None, shortest=2, optimal=1.0, invalid=0):
    steps = steps or [3 if s else 5 for s in successes]
    episodes = [EpisodeRecord(s, n, 0, shortest, optimal, False, 0, invalid) for s, n in zip(successes, steps)]
    return TrialRecord("x", 0, 1, 2, ["t"], episodes, wall_time=0.5)


GOLDEN_MEAN_CI = (0.2562, 0.7)
GOLDEN_IQM_CI = (0.175, 0.775)

RECORDS = [
    trial([0, 1, 1, 1], steps=[5, 2, 2, 4]),
    trial([0, 0, 1, 1], steps=[5, 5, 3, 3]),
    trial([1, 1, 1, 1], steps=[2, 2, 2, 2]),
    trial([0, 0, 0, 0]),
]


def test_golden_metrics():
    m = suite_metrics(RECORDS)
    assert m["trials"] == 4 and m["episodes"] == 4
    assert m["curve"] == [0.25, 0.5, 0.75, 0.75]
    assert m["auc"]["value"] == pytest.approx((0.75 + 0.5 + 1.0 + 0.0) / 4)
    # IQM of per-trial AUCs [0, 0.5, 0.75, 1.0]: drop one from each end -> mean(0.5, 0.75).
    assert m["iqm_auc"]["value"] == pytest.approx(0.625)
    assert m["first"]["value"] == 0.25
    assert m["last10"]["value"] == pytest.approx(m["auc"]["value"])  # fewer than 10 episodes: all of them
    # First successes at episodes 2, 3, 1 and never (counted as 4 + 1 = 5).
    assert m["episodes_to_first_success"]["value"] == pytest.approx((2 + 3 + 1 + 5) / 4)
    assert m["never_solved"] == 0.25
    # Regret: sum over episodes of (1 - success) per trial: 1, 2, 0, 4.
    assert m["regret"]["value"] == pytest.approx(7 / 4)
    # Successful episodes' steps / shortest (2): trial means of 2,2,4 | 3,3 | 2,2,2,2 -> (4/3, 1.5, 1); the
    # trial without a success has none.
    assert m["path_ratio"]["value"] == pytest.approx(np.mean([4 / 3, 1.5, 1.0]))
    assert m["steps"] == 5 + 2 + 2 + 4 + 5 + 5 + 3 + 3 + 8 + 20
    assert m["wall_time"] == 2.0 and m["steps_per_second"] == pytest.approx(m["steps"] / 2.0)
    assert m["invalid_actions"] == 0
    for name in ("auc", "iqm_auc", "first", "regret"):
        assert m[name]["ci_low"] <= m[name]["value"] <= m[name]["ci_high"]
    assert all(lo <= c <= hi for lo, c, hi in zip(m["curve_ci_low"], m["curve"], m["curve_ci_high"]))


def test_change_metrics():
    # 2 trials of 8 episodes, change after 5: pre window = episodes 0-4, post = episode 5.
    records = [trial([1, 1, 1, 1, 1, 0, 0, 1]), trial([0, 1, 1, 1, 1, 0, 1, 1])]
    m = suite_metrics(records, change_after=5)
    assert m["pre_change"] == pytest.approx(0.9)
    assert m["post_change"] == 0.0
    assert m["drop"]["value"] == pytest.approx(0.9)
    # Curve after the change: 0.0, 0.5, 1.0 -> first >= 0.9 * 0.9 = 0.81 two episodes after it.
    assert m["recovery_episodes"] == 2
    m = suite_metrics([trial([1, 1, 1, 0, 0])], change_after=3)
    assert m["recovery_episodes"] is None  # never back
    m = suite_metrics([trial([0, 0, 1, 0, 0, 1]), trial([0, 0, 0, 0, 0, 0])], change_after=3)
    assert m["pre_change"] == pytest.approx(1 / 6) and m["recovery_episodes"] is None  # nothing learnt to recover


def test_golden_bootstrap_intervals():
    # Pinned: a change in resampling (seed, count, percentile method) must be deliberate.
    data = np.array([0.0, 0.1, 0.25, 0.5, 0.5, 0.6, 0.9, 1.0])
    lo, hi = bootstrap_ci(data)
    assert (round(float(lo), 4), round(float(hi), 4)) == GOLDEN_MEAN_CI
    lo, hi = bootstrap_ci(data, interquartile_mean)
    assert (round(float(lo), 4), round(float(hi), 4)) == GOLDEN_IQM_CI


def test_constant_data_has_a_point_interval_and_bootstrap_is_reproducible():
    lo, hi = bootstrap_ci(np.ones(30))
    assert lo == hi == 1.0
    data = np.random.default_rng(1).random(50)
    assert bootstrap_ci(data) == bootstrap_ci(data)
    lo, hi = bootstrap_ci(data)
    assert lo < data.mean() < hi and hi - lo < 0.25


def test_interquartile_mean():
    assert interquartile_mean(np.array([0.0, 1, 2, 3, 4, 5, 6, 100])) == pytest.approx(3.5)


def test_invalid_input():
    with pytest.raises(ValueError, match="no trial records"):
        suite_metrics([])
    with pytest.raises(ValueError, match="different numbers of episodes"):
        suite_metrics([trial([1]), trial([1, 0])])


def test_the_table_says_not_recovered_instead_of_none():
    from icrl_bench.protocol.results import format_table

    ci = {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6}
    row = {"auc": ci, "iqm_auc": ci, "first": ci, "last10": ci, "regret": ci, "steps_per_second": 10.0,
           "drop": ci, "pre_change": 1.0, "post_change": 0.2}  # fmt: skip
    assert "not recovered within the trial" in format_table({"nonstationary": {**row, "recovery_episodes": None}}, "a")
    assert "recovered after 4 episodes" in format_table({"nonstationary": {**row, "recovery_episodes": 4}}, "a")
