"""ROC analysis of a two-class score (numpy only): AUC as the Mann-Whitney statistic, the ROC
curve, and a stratified bootstrap confidence interval of the AUC."""

from __future__ import annotations

import numpy as np


def _as_scores(values: np.ndarray | list[float], name: str) -> np.ndarray:
    scores = np.asarray(values, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError(f"{name}: no scores")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name}: scores must be finite")
    return scores


def roc_auc(positives: np.ndarray | list[float], negatives: np.ndarray | list[float]) -> float:
    """P(a positive scores above a negative), ties counting one half: 1 perfect, 0.5 chance."""
    pos = _as_scores(positives, "positives")
    neg = _as_scores(negatives, "negatives")
    combined = np.concatenate([pos, neg])
    # Average ranks (1-based) with ties shared, then the Mann-Whitney U of the positives.
    _, inverse, counts = np.unique(combined, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    average_rank = upper - (counts - 1) / 2.0
    rank_sum = average_rank[inverse[: pos.size]].sum()
    u_statistic = rank_sum - pos.size * (pos.size + 1) / 2.0
    return float(u_statistic / (pos.size * neg.size))


def roc_curve(
    positives: np.ndarray | list[float], negatives: np.ndarray | list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates as the threshold falls through every distinct score, from
    (0, 0) to (1, 1)."""
    pos = _as_scores(positives, "positives")
    neg = _as_scores(negatives, "negatives")
    thresholds = np.unique(np.concatenate([pos, neg]))[::-1]
    tpr = np.array([0.0, *((pos >= t).mean() for t in thresholds)])
    fpr = np.array([0.0, *((neg >= t).mean() for t in thresholds)])
    return fpr, tpr


def bootstrap_auc_interval(
    positives: np.ndarray | list[float],
    negatives: np.ndarray | list[float],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the AUC over ``resamples`` bootstrap samples, each class resampled
    with replacement at its own size (seeded: the same inputs give the same interval)."""
    pos = _as_scores(positives, "positives")
    neg = _as_scores(negatives, "negatives")
    rng = np.random.default_rng(seed)
    aucs = np.array(
        [roc_auc(rng.choice(pos, size=pos.size), rng.choice(neg, size=neg.size)) for _ in range(resamples)]
    )
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(aucs, [tail, 1.0 - tail])
    return float(low), float(high)
