"""Aggregate statistics for a benchmark with few runs, after rliable: Agarwal et al., "Deep
Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021.

The paper's point is that with a handful of training seeds a point estimate (a mean, a median)
says little: two algorithms' ranking can flip with the next seed. It recommends

* the interquartile mean (IQM) as the aggregate score: robust to outlier runs like the median,
  yet it uses half of the data rather than one or two values, so its error is far smaller;
* stratified bootstrap confidence intervals on any aggregate: resample the runs of each task
  separately, which keeps every task in every resample (tasks are fixed, only seeds are random);
* performance profiles (score distributions): the fraction of runs scoring above each threshold,
  which shows the whole distribution instead of one number;
* the probability of improvement P(X > Y): how likely a run of X beats a run of Y on a task,
  which says how often X is better, not by how much.

Scores are arrays of shape ``(n_runs, n_tasks)``: one row per run (training seed), one column per
task (an evaluation seed, or a single column holding an aggregate). The bootstrap is vectorized:
a statistic gets every resample at once, as an array of shape ``(reps, n_runs, n_tasks)``, and
reduces the last two axes. The rliable package is archived; this is written on numpy and scipy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy.stats

MIN_RUNS_FOR_T = 5
"""Fewest runs whose Student's t interval a report prints: with 2 runs the interval is wider than the
data and says nothing (the stratified bootstrap intervals are printed whatever the count)."""

Statistic = Callable[[np.ndarray], np.ndarray]
"""Maps scores of shape ``(..., n_runs, n_tasks)`` to a value per leading index: shape ``(...)``."""


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval ``[low, high]``."""

    point: float
    low: float
    high: float


@dataclass(frozen=True, eq=False)
class Band:
    """A performance profile (one value per threshold) and its pointwise confidence band
    (compared by identity: ``==`` on arrays has no single truth value)."""

    point: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _check_scores(scores: np.ndarray, name: str = "scores", batched: bool = False) -> np.ndarray:
    """``scores`` as a float array of shape ``(n_runs, n_tasks)`` (``(..., n_runs, n_tasks)`` when
    ``batched``), or a ValueError saying why not."""
    array = np.asarray(scores, dtype=float)
    if array.ndim != 2 and not (batched and array.ndim > 2):
        raise ValueError(f"{name} must be a 2-D array (n_runs, n_tasks), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must have at least one run and one task, got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"{name} contain NaN ({int(np.isnan(array).sum())} of {array.size} entries)")
    return array


def _check_same_tasks(named: Mapping[str, np.ndarray]) -> None:
    tasks = {name: scores.shape[1] for name, scores in named.items()}
    if len(set(tasks.values())) > 1:
        raise ValueError(f"all score arrays must have the same number of tasks, got {tasks}")


def _check_bootstrap(reps: int, confidence: float) -> None:
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def _check_taus(taus: np.ndarray) -> np.ndarray:
    array = np.asarray(taus, dtype=float)
    if array.ndim != 1 or array.size == 0 or np.isnan(array).any():
        raise ValueError(f"taus must be a non-empty 1-D array without NaN, got shape {array.shape}")
    return array


def _flatten_runs_and_tasks(scores: np.ndarray) -> np.ndarray:
    """Scores of shape ``(..., n_runs, n_tasks)`` as ``(..., n_runs * n_tasks)``."""
    return scores.reshape(*scores.shape[:-2], -1)


def iqm(scores: np.ndarray) -> np.ndarray | float:
    """Interquartile mean: the mean of the middle 50% of all run×task scores (Agarwal et al. 2021,
    section 4.2).

    It discards the lowest and highest 25% (``scipy.stats.trim_mean(x, 0.25)`` on the flattened
    scores, as rliable does), so a single diverged or lucky run moves it little, unlike the mean,
    while it averages far more values than the median and so varies less between seed draws.
    ``scores`` has shape ``(n_runs, n_tasks)`` (a float comes back) or ``(..., n_runs, n_tasks)``
    (one IQM per leading index).
    """
    return scipy.stats.trim_mean(_flatten_runs_and_tasks(_check_scores(scores, batched=True)), 0.25, axis=-1)


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Score distribution: for each threshold ``tau``, the fraction of run×task scores above it
    (``score > tau``), Agarwal et al. 2021, section 4.1.

    Unlike an aggregate it shows the whole distribution of run scores; when one algorithm's
    profile lies above another's everywhere, it is better whatever aggregate one picks
    (stochastic dominance). ``scores`` has shape ``(n_runs, n_tasks)`` or ``(..., n_runs,
    n_tasks)``; the result has shape ``(..., len(taus))``.
    """
    flat = _flatten_runs_and_tasks(_check_scores(scores, batched=True))
    return (flat[..., :, None] > _check_taus(taus)).mean(axis=-2)


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) of ``x`` ``(..., n_x, n_tasks)`` over ``y`` ``(..., n_y, n_tasks)``: shape ``(...)``."""
    x_runs, y_runs = x[..., :, None, :], y[..., None, :, :]  # pairs: (..., n_x, n_y, n_tasks)
    per_task = (x_runs > y_runs).mean(axis=(-3, -2)) + 0.5 * (x_runs == y_runs).mean(axis=(-3, -2))
    return per_task.mean(axis=-1)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """Average probability of improvement P(X > Y) of algorithm X over Y (Agarwal et al. 2021,
    section 4.3).

    On each task it is the Mann-Whitney U statistic of X's runs against Y's, normalized: the
    fraction of (run of X, run of Y) pairs where X scores higher, a tie counting 1/2. The tasks'
    values are averaged. It says how likely X beats Y on a task picked at random, not by how much,
    so a few huge scores cannot dominate it; 0.5 means neither is better. ``x`` and ``y`` have
    shapes ``(n_x, n_tasks)`` and ``(n_y, n_tasks)`` (the run counts may differ).
    """
    x, y = _check_scores(x, "x"), _check_scores(y, "y")
    _check_same_tasks({"x": x, "y": y})
    return float(_improvement(x, y))


def _resample(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``reps`` stratified bootstrap resamples of ``scores``: shape ``(reps, n_runs, n_tasks)``.

    Each task's column draws ``n_runs`` of its own runs with replacement; runs of different tasks
    are never mixed, and every task is in every resample.
    """
    n_runs, n_tasks = scores.shape
    runs = rng.integers(n_runs, size=(reps, n_runs, n_tasks))
    return scores[runs, np.arange(n_tasks)]


def _percentile_interval(distribution: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval: the central ``confidence`` mass of ``distribution`` along
    axis 0 (rliable's default method)."""
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(distribution, [tail, 100 - tail], axis=0)
    return low, high


def _bootstrap(
    scores: np.ndarray, statistic: Statistic, reps: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``statistic`` of ``scores`` and of ``reps`` stratified resamples of it (leading axis)."""
    point = np.asarray(statistic(scores))
    distribution = np.asarray(statistic(_resample(scores, reps, np.random.default_rng(seed))))
    if distribution.shape != (reps, *point.shape):
        raise ValueError(
            f"statistic must reduce only the last two axes (n_runs, n_tasks): got shape {point.shape} "
            f"for one score array and {distribution.shape} for {reps} resamples"
        )
    return point, distribution


def _checked_algorithms(scores_by_algo: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not scores_by_algo:
        raise ValueError("scores_by_algo is empty: give at least one algorithm's scores")
    checked = {name: _check_scores(scores, f"scores of {name!r}") for name, scores in scores_by_algo.items()}
    _check_same_tasks(checked)
    return checked


def stratified_bootstrap_ci(
    scores_by_algo: Mapping[str, np.ndarray],
    statistic: Statistic = iqm,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Each algorithm's ``statistic`` with a stratified bootstrap percentile confidence interval
    (Agarwal et al. 2021, section 3.2 and appendix A.1).

    The interval answers: how much would the aggregate move if the runs (training seeds) were
    drawn again on the same tasks? Runs are resampled with replacement within each task, so each
    resample keeps all tasks and never lets one task's runs stand in for another's; the interval
    is the central ``confidence`` mass of the ``reps`` resampled statistics. ``statistic`` maps
    ``(..., n_runs, n_tasks)`` to ``(...)`` (as ``iqm`` does) and gets all resamples in one call.
    Every algorithm is resampled from the same ``seed``, so its interval does not depend on which
    other algorithms are in the mapping.
    """
    _check_bootstrap(reps, confidence)
    intervals = {}
    for name, scores in _checked_algorithms(scores_by_algo).items():
        point, distribution = _bootstrap(scores, statistic, reps, seed)
        if point.shape != ():
            raise ValueError(f"statistic must return one value per score array, got shape {point.shape}")
        low, high = _percentile_interval(distribution, confidence)
        intervals[name] = Interval(float(point), float(low), float(high))
    return intervals


def performance_profile_ci(
    scores_by_algo: Mapping[str, np.ndarray],
    taus: np.ndarray,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Band]:
    """Each algorithm's performance profile at ``taus`` with a pointwise stratified bootstrap
    confidence band (Agarwal et al. 2021, section 4.1): at each threshold, the percentile
    interval of the fraction of runs above it over ``reps`` resamples (see
    ``stratified_bootstrap_ci``)."""
    _check_bootstrap(reps, confidence)
    taus = _check_taus(taus)
    bands = {}
    for name, scores in _checked_algorithms(scores_by_algo).items():
        point, distribution = _bootstrap(scores, partial(performance_profile, taus=taus), reps, seed)
        low, high = _percentile_interval(distribution, confidence)
        bands[name] = Band(point, low, high)
    return bands


def probability_of_improvement_ci(
    x: np.ndarray, y: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """P(X > Y) (see ``probability_of_improvement``) with a stratified bootstrap percentile
    interval: the runs of ``x`` and of ``y`` are resampled independently, each within its tasks,
    as rliable's ``StratifiedIndependentBootstrap`` does (Agarwal et al. 2021, section 4.3)."""
    _check_bootstrap(reps, confidence)
    x, y = _check_scores(x, "x"), _check_scores(y, "y")
    _check_same_tasks({"x": x, "y": y})
    rng = np.random.default_rng(seed)
    distribution = _improvement(_resample(x, reps, rng), _resample(y, reps, rng))
    low, high = _percentile_interval(distribution, confidence)
    return Interval(float(_improvement(x, y)), float(low), float(high))


def mean_and_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (Student's t; 0 for one run)."""
    array = np.asarray([v for v in values if not np.isnan(v)], dtype=float)
    if len(array) == 0:
        return float("nan"), float("nan")
    if len(array) == 1:
        return float(array[0]), 0.0
    half = scipy.stats.t.ppf(0.975, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array))
    return float(array.mean()), float(half)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))
