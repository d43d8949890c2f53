"""teams_rl.agents.benchmark.statistics (rliable's statistics on numpy/scipy) against values computed by hand, and
the two rliable figures of teams_rl.agents.plots."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from teams_rl.agents.benchmark.statistics import (
    Interval,
    iqm,
    performance_profile,
    performance_profile_ci,
    probability_of_improvement,
    probability_of_improvement_ci,
    stratified_bootstrap_ci,
)
from teams_rl.agents.plots import plot_interval_estimates, plot_performance_profiles

RNG = np.random.default_rng(7)
NOISY = RNG.normal(size=(10, 5))


def mean_of_all(scores: np.ndarray) -> np.ndarray:
    """The plain mean over runs and tasks, for each leading index."""
    return scores.mean(axis=(-2, -1))


# IQM


def test_iqm_is_the_mean_of_the_middle_half():
    scores = np.array([[1, 100], [2, 3], [4, 5], [6, -50]])
    # 8 values sorted: -50 1 | 2 3 4 5 | 6 100; 25% of 8 = 2 cut from each end, so the IQM is
    # (2 + 3 + 4 + 5) / 4 = 3.5, while the mean (71 / 8 = 8.875) follows the two outliers.
    assert iqm(scores) == pytest.approx(3.5)
    assert isinstance(iqm(scores), float)


def test_iqm_of_a_stack_is_one_value_per_array():
    stack = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 3.0)])
    np.testing.assert_allclose(iqm(stack), [1.0, 3.0])


# Probability of improvement


X = np.array([[1, 5], [2, 5], [3, 0]])  # 3 runs, 2 tasks
Y = np.array([[2, 5], [0, 1]])  # 2 runs, same 2 tasks


def test_probability_of_improvement_counts_ties_as_half():
    # Task 0: x in {1, 2, 3}, y in {2, 0}; the 6 pairs (1,2) (1,0) (2,2) (2,0) (3,2) (3,0) score
    # 0 + 1 + 1/2 + 1 + 1 + 1 = 4.5, so P = 4.5 / 6 = 0.75.
    # Task 1: x in {5, 5, 0}, y in {5, 1}; (5,5) (5,1) (5,5) (5,1) (0,5) (0,1) score
    # 1/2 + 1 + 1/2 + 1 + 0 + 0 = 3, so P = 3 / 6 = 0.5.
    # Averaged over the tasks: (0.75 + 0.5) / 2 = 0.625; ties split evenly, so P(Y > X) = 0.375.
    assert probability_of_improvement(X, Y) == pytest.approx(0.625)
    assert probability_of_improvement(Y, X) == pytest.approx(0.375)


def test_probability_of_improvement_is_the_normalized_mann_whitney_u():
    u = [scipy.stats.mannwhitneyu(X[:, task], Y[:, task]).statistic / (3 * 2) for task in range(2)]
    assert probability_of_improvement(X, Y) == pytest.approx(np.mean(u))


def test_probability_of_improvement_is_one_under_strict_dominance_and_half_for_identical_inputs():
    assert probability_of_improvement(NOISY + 10, NOISY) == 1.0
    assert probability_of_improvement(NOISY, NOISY + 10) == 0.0
    with_ties = np.array([[1.0, 1.0], [1.0, 2.0], [3.0, 2.0]])
    assert probability_of_improvement(with_ties, with_ties) == 0.5
    assert probability_of_improvement(NOISY, NOISY) == 0.5


def test_probability_of_improvement_ci():
    interval = probability_of_improvement_ci(X, Y, reps=500, seed=1)
    assert interval.point == pytest.approx(0.625)
    assert 0.0 <= interval.low <= interval.point <= interval.high <= 1.0
    assert interval.low < interval.high
    # Every resample of a dominated pair is still dominated; identical constants always tie.
    assert probability_of_improvement_ci(NOISY + 10, NOISY, reps=200) == Interval(1.0, 1.0, 1.0)
    ones = np.ones((4, 3))
    assert probability_of_improvement_ci(ones, ones, reps=200) == Interval(0.5, 0.5, 0.5)
    assert probability_of_improvement_ci(X, Y, reps=500, seed=1) == interval


# Performance profiles


def test_performance_profile_counts_scores_strictly_above_tau():
    scores = np.array([[0.0, 0.5, 1.0], [0.25, 0.75, 1.5]])
    # The 6 scores 0, 0.25, 0.5, 0.75, 1, 1.5: above -1 all 6 (1); above 0 five (5/6, 0 itself
    # is not above); above 0.5 three: 0.75, 1, 1.5 (1/2); above 1 one: 1.5 (1/6); above 2 none.
    taus = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(performance_profile(scores, taus), [1, 5 / 6, 1 / 2, 1 / 6, 0])


def test_performance_profile_ci_band():
    taus = np.linspace(-2, 2, 9)
    bands = performance_profile_ci({"noisy": NOISY, "flat": np.full((10, 5), 0.3)}, taus, reps=500)
    noisy = bands["noisy"]
    np.testing.assert_allclose(noisy.point, performance_profile(NOISY, taus))
    assert np.all(noisy.low <= noisy.point) and np.all(noisy.point <= noisy.high)
    assert np.any(noisy.low < noisy.high)
    # A constant score is above tau in every resample or in none: the band is the profile itself.
    flat = bands["flat"]
    np.testing.assert_array_equal(flat.point, (taus < 0.3).astype(float))
    np.testing.assert_array_equal(flat.low, flat.point)
    np.testing.assert_array_equal(flat.high, flat.point)


# Stratified bootstrap


def test_bootstrap_ci_contains_the_point_estimate():
    interval = stratified_bootstrap_ci({"noisy": NOISY}, iqm, reps=1000)["noisy"]
    assert interval.point == pytest.approx(iqm(NOISY))
    assert interval.low < interval.point < interval.high


def test_bootstrap_ci_collapses_for_constant_scores():
    assert stratified_bootstrap_ci({"flat": np.full((6, 4), 2.5)})["flat"] == Interval(2.5, 2.5, 2.5)


def test_bootstrap_is_deterministic_for_a_seed():
    scores = {"a": NOISY, "b": NOISY * 2}
    first = stratified_bootstrap_ci(scores, iqm, reps=300, seed=3)
    assert stratified_bootstrap_ci(scores, iqm, reps=300, seed=3) == first
    assert stratified_bootstrap_ci(scores, iqm, reps=300, seed=4) != first
    # An algorithm's interval does not depend on the other algorithms in the mapping.
    assert stratified_bootstrap_ci({"b": NOISY * 2}, iqm, reps=300, seed=3)["b"] == first["b"]


def test_bootstrap_resamples_runs_within_each_task():
    # Task 0 scores 0 and task 1 scores 1 on all 4 runs. Drawing runs within each task keeps four
    # 0s and four 1s in every resample, so the mean is always (4 * 0 + 4 * 1) / 8 = 0.5 and the
    # interval collapses. Drawing from the 8 pooled values instead could give eight 0s (mean 0)
    # or eight 1s (mean 1): its interval is wide.
    scores = np.array([[0.0, 1.0]] * 4)
    assert stratified_bootstrap_ci({"a": scores}, mean_of_all)["a"] == Interval(0.5, 0.5, 0.5)
    pooled = np.random.default_rng(0).choice(scores.ravel(), size=(2000, 8)).mean(axis=1)
    assert np.percentile(pooled, 97.5) - np.percentile(pooled, 2.5) > 0.5


def test_bootstrap_calls_the_statistic_once_on_all_resamples():
    shapes = []

    def recording_iqm(scores: np.ndarray) -> np.ndarray:
        shapes.append(scores.shape)
        return iqm(scores)

    stratified_bootstrap_ci({"noisy": NOISY}, recording_iqm, reps=50)
    assert shapes == [(10, 5), (50, 10, 5)]


# Input errors


TWO_TASKS = np.ones((3, 2))
THREE_TASKS = np.ones((3, 3))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: iqm(np.array([1.0, 2.0])), "must be a 2-D array"),
        (lambda: iqm(np.empty((0, 3))), "at least one run and one task"),
        (lambda: iqm(np.array([[1.0, np.nan]])), "contain NaN"),
        (lambda: probability_of_improvement(TWO_TASKS, THREE_TASKS), "same number of tasks"),
        (lambda: probability_of_improvement_ci(TWO_TASKS, np.ones(2)), "y must be a 2-D array"),
        (lambda: stratified_bootstrap_ci({"a": TWO_TASKS, "b": THREE_TASKS}), "same number of tasks"),
        (lambda: stratified_bootstrap_ci({}), "scores_by_algo is empty"),
        (lambda: stratified_bootstrap_ci({"a": np.array([[np.nan]])}), "scores of 'a' contain NaN"),
        (lambda: stratified_bootstrap_ci({"a": TWO_TASKS}, reps=0), "reps must be at least 1"),
        (lambda: stratified_bootstrap_ci({"a": TWO_TASKS}, confidence=1.0), "confidence must lie"),
        (lambda: stratified_bootstrap_ci({"a": TWO_TASKS}, np.mean), "reduce only the last two axes"),
        (
            lambda: stratified_bootstrap_ci({"a": TWO_TASKS}, lambda s: s.mean(axis=-2)),
            "one value per score array",
        ),
        (lambda: performance_profile(TWO_TASKS, np.array([])), "taus must be"),
        (lambda: performance_profile_ci({"a": TWO_TASKS}, np.ones((2, 2))), "taus must be"),
    ],
)
def test_input_errors(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)


# Plots


def is_png(path) -> bool:
    return path.stat().st_size > 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_performance_profiles_writes_a_png(tmp_path):
    taus = np.linspace(-2, 2, 21)
    bands = performance_profile_ci({"noisy": NOISY, "shifted": NOISY + 0.5}, taus, reps=200)
    path = plot_performance_profiles(bands, taus, tmp_path / "figs" / "profiles.png", "Score distributions")
    assert path == tmp_path / "figs" / "profiles.png"
    assert is_png(path)


def test_plot_interval_estimates_writes_a_png(tmp_path):
    intervals = stratified_bootstrap_ci({"noisy": NOISY, "flat": np.full((10, 5), 0.3)}, reps=200)
    path = plot_interval_estimates(intervals, tmp_path / "iqm.png", "IQM of normalized score")
    assert is_png(path)
