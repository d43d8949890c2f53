"""Fitting a review head (``teams-rl train-reviewer``): two L2-regularised logistic heads on a
reviewer model's hidden state of labelled pairs (and, optionally, encoder features), each with the
threshold of best balanced accuracy out of fold. The environment only reads heads
(:mod:`teams_env.reward.review_head`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from teams_env.reward.review_head import (
    HIDDEN,
    LogisticHead,
    ReviewHead,
    action_columns,
    prompt_fingerprint,
    sigmoid,
)
from teams_env.roc import roc_auc

GOOD_FEATURES = (
    "action",
    "action*distance",
    "action*length_ratio",
    "action*new_share",
    "action*dropped_share",
    "action*has_data",
)
"""The GOOD head's action block by default: an intercept per action, and per action its own weight
on how far the rewrite moved, how much longer it got, what it added and dropped and whether it
added data (breadth should move away, the others should keep the task). Chosen by cross-validation
on the labelled rewrites (benchmarks/results/reward_reading.md)."""
GOOD_DEFAULTS = {"components": 8, "l2": 30.0}
"""The GOOD head's fitting defaults (``teams-rl train-reviewer --good-*``), chosen the same way."""


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float, iterations: int = 50) -> np.ndarray:
    """Weights (last entry the bias, not regularised) of an L2-regularised logistic regression,
    by Newton's method: exact, deterministic, and fast for a few hundred rows."""
    x = np.hstack([features, np.ones((len(features), 1))])
    y = labels.astype(np.float64)
    penalty = np.eye(x.shape[1]) * l2
    penalty[-1, -1] = 0.0
    weights = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = sigmoid(x @ weights)
        gradient = x.T @ (p - y) + penalty @ weights
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return weights


def balanced_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold (a midpoint between adjacent scores) with the best balanced accuracy."""
    order = np.unique(scores)
    candidates = np.concatenate([[order[0] - 1e-6], (order[:-1] + order[1:]) / 2, [order[-1] + 1e-6]])
    positives, negatives = labels.astype(bool), ~labels.astype(bool)

    def balanced(t: float) -> float:
        return 0.5 * ((scores[positives] >= t).mean() + (scores[negatives] < t).mean())

    return float(max(candidates, key=balanced))


MIN_RECALL = 0.25
"""A GOOD head must still pay: a threshold that reaches the precision only by calling almost
nothing (less than this share of the GOOD rows) does not count as reaching it."""


def precision_threshold(scores: np.ndarray, labels: np.ndarray, precision: float) -> tuple[float, bool]:
    """(threshold, reached): the lowest threshold (most recall) whose calls reach ``precision``
    with a recall of at least :data:`MIN_RECALL`; where none does, the one of best F0.5 (precision
    weighed twice as much as recall)."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, hits = scores[order], labels[order].astype(float)
    true_positives = np.cumsum(hits)
    called = np.arange(1, len(hits) + 1)
    # Only cut between distinct scores: a threshold calls every row of its score alike.
    last_of_score = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    precisions = np.where(last_of_score, true_positives / called, -1.0)
    recalls = true_positives / max(hits.sum(), 1.0)
    reached = np.flatnonzero(precisions >= precision)
    if len(reached) and recalls[reached[-1]] >= MIN_RECALL:
        return float(sorted_scores[reached[-1]]), True
    f_half = np.where(
        last_of_score, 1.25 * precisions * recalls / np.maximum(0.25 * precisions + recalls, 1e-12), -1.0
    )
    return float(sorted_scores[int(np.argmax(f_half))]), False


def folds_by_group(groups: np.ndarray, folds: int) -> np.ndarray:
    """Each row's fold: the groups (base instructions, seeds) in sorted order dealt round-robin, so
    the rows of one group share a fold and every fitting with the same groups splits alike."""
    fold_of_group = {g: i % folds for i, g in enumerate(np.unique(groups))}
    return np.array([fold_of_group[g] for g in groups])


def _fit_head(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray, l2: float, folds: int
) -> tuple[LogisticHead, dict[str, float]]:
    """A head on all rows, its threshold from out-of-fold predictions (folds by group)."""
    fold = folds_by_group(groups, folds)
    held_out = np.zeros(len(labels))
    for k in range(folds):
        train = fold != k
        weights = fit_logistic(features[train], labels[train], l2)
        held_out[~train] = LogisticHead(tuple(weights), 0.5).probability(features[~train])
    threshold = balanced_threshold(held_out, labels)
    weights = fit_logistic(features, labels, l2)
    positives, negatives = held_out[labels.astype(bool)], held_out[~labels.astype(bool)]
    report = {"cv_auc": roc_auc(positives, negatives), "rows": len(labels), "positives": int(labels.sum())}
    return LogisticHead(tuple(float(w) for w in weights), threshold), report


def train_review_head(
    states: np.ndarray,
    not_equal: np.ndarray,
    valid: np.ndarray,
    review_rows: np.ndarray,
    groups: np.ndarray,
    *,
    model_id: str,
    l2: float = 10.0,
    folds: int = 5,
    extra: np.ndarray | None = None,
    extra_names: Sequence[str] = (),
    encoder: str = "",
    components: int = 0,
    extra_weight: float = 1.0,
) -> ReviewHead:
    """Fit both heads. ``review_rows`` marks the rows whose Equal / Not Equal label is the question
    (the validity head sees every row). Rows of one ``group`` (a base instruction) share a fold.

    ``extra``: the rows' encoder features ``extra_names`` (computed with ``encoder``).
    ``components``: fit on the first principal components of the standardised hidden state (0: on
    all of it). ``extra_weight``: the scale of the standardised encoder features while fitting (the
    L2 penalty on their weights is divided by its square), so a few features weigh against many
    hidden dimensions. Either way the heads are stored as weights on the standardised features."""
    states = np.asarray(states, dtype=np.float64)
    extra_names = tuple(extra_names)
    if extra_names:
        if extra is None or np.shape(extra) != (len(states), len(extra_names)):
            raise ValueError(f"extra features must be a ({len(states)}, {len(extra_names)}) matrix")
        matrix = np.hstack([states, np.asarray(extra, dtype=np.float64)])
    else:
        matrix = states
    mean = matrix.mean(axis=0)
    scale = matrix.std(axis=0) + 1e-6
    standardised = (matrix - mean) / scale
    hidden = states.shape[1]
    # The fitting basis: principal directions of the hidden state (or the identity), then the
    # encoder features scaled by extra_weight. weights_on_features = basis @ fitted weights.
    if components and components < hidden:
        _, _, vt = np.linalg.svd(standardised[:, :hidden], full_matrices=False)
        hidden_basis = vt[:components].T
    else:
        hidden_basis = np.eye(hidden)
    basis = np.zeros((matrix.shape[1], hidden_basis.shape[1] + len(extra_names)))
    basis[:hidden, : hidden_basis.shape[1]] = hidden_basis
    basis[hidden:, hidden_basis.shape[1] :] = np.eye(len(extra_names)) * extra_weight
    design = standardised @ basis
    review_rows = review_rows.astype(bool)
    not_equal_head, not_equal_report = _fit_head(
        design[review_rows], not_equal[review_rows], groups[review_rows], l2, folds
    )
    valid_head, valid_report = _fit_head(design, valid, groups, l2, folds)
    return ReviewHead(
        model_id=model_id,
        prompt=prompt_fingerprint(),
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        not_equal=_on_features(not_equal_head, basis),
        valid=_on_features(valid_head, basis),
        training={
            "l2": l2,
            "folds": folds,
            "components": components,
            "extra_weight": extra_weight,
            "not_equal": not_equal_report,
            "valid": valid_report,
        },
        features=(HIDDEN, *extra_names),
        encoder=encoder if extra_names else "",
    )


def _on_features(head: LogisticHead, basis: np.ndarray) -> LogisticHead:
    """A head fitted on ``standardised @ basis`` as weights on the standardised features."""
    weights = np.asarray(head.weights)
    return LogisticHead(tuple(float(w) for w in (*(basis @ weights[:-1]), weights[-1])), head.threshold)


def fit_good_head(
    head: ReviewHead,
    standardised: np.ndarray,
    actions: np.ndarray,
    good: np.ndarray,
    groups: np.ndarray,
    *,
    good_features: Sequence[str],
    l2: float,
    folds: int,
    components: int,
    extra_weight: float,
    precision: float,
) -> ReviewHead:
    """``head`` with a GOOD head fitted on labelled rewrites: ``standardised`` features (by
    ``head``), each row's action and whether readers called it GOOD. Rows of one group (a seed)
    share a fold; the threshold is the lowest whose out-of-fold precision reaches ``precision``
    (:func:`precision_threshold`). The hidden state is reduced to ``components`` principal
    directions while fitting, the encoder features and the action block scaled by ``extra_weight``."""
    hidden = head.hidden_size
    block = action_columns(actions, standardised[:, hidden:], head.encoder_feature_names, good_features)
    design = np.hstack([standardised, block])
    fold = folds_by_group(groups, folds)

    def basis_of(rows: np.ndarray) -> np.ndarray:
        if components and components < hidden:
            centred = standardised[rows, :hidden] - standardised[rows, :hidden].mean(axis=0)
            hidden_basis = np.linalg.svd(centred, full_matrices=False)[2][:components].T
        else:
            hidden_basis = np.eye(hidden)
        rest = design.shape[1] - hidden
        basis = np.zeros((design.shape[1], hidden_basis.shape[1] + rest))
        basis[:hidden, : hidden_basis.shape[1]] = hidden_basis
        basis[hidden:, hidden_basis.shape[1] :] = np.eye(rest) * extra_weight
        return basis

    held_out = np.zeros(len(good))
    for k in range(folds):
        train = fold != k
        basis = basis_of(train)
        weights = fit_logistic(design[train] @ basis, good[train], l2)
        held_out[~train] = LogisticHead(tuple(weights), 0.5).probability(design[~train] @ basis)
    threshold, reached = precision_threshold(held_out, good, precision)
    basis = basis_of(np.ones(len(good), dtype=bool))
    fitted = _on_features(LogisticHead(tuple(fit_logistic(design @ basis, good, l2)), threshold), basis)
    called = held_out >= threshold
    positives, negatives = held_out[good.astype(bool)], held_out[~good.astype(bool)]
    report = {
        "cv_auc": roc_auc(positives, negatives),
        "cv_precision": float(good[called].mean()) if called.any() else None,
        "cv_recall": float(called[good.astype(bool)].mean()) if good.any() else None,
        "precision_target": precision,
        "precision_reached": reached,
        "rows": len(good),
        "positives": int(good.sum()),
        "l2": l2,
        "components": components,
        "extra_weight": extra_weight,
    }
    return replace(
        head,
        good=fitted,
        good_features=tuple(good_features),
        training={**head.training, "good": report},
    )
