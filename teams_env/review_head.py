"""A reviewer trained by the project: two logistic heads on the reviewer LLM's hidden state.

The reviewer model reads the pair the way a reward model reads a (prompt, reply): the instruction
before is the prompt, the rewrite is the reply (:func:`head_conversation`), and the model's final
hidden state at the reply's last token is the feature vector. One head gives P(Not Equal), the
other P(valid rewrite). Both are L2-regularised logistic regressions fitted by Newton's method on
the benchmark's training split; decision thresholds come from cross-validated predictions grouped
by base instruction, so no pair ever sets a threshold for itself.

Why not the labels' likelihood: the 135M model's own "Equal"/"Not Equal" tokens rank real
evolutions against surface edits at chance (ROC AUC 0.45), while its hidden state, read by a head
fitted on a few hundred pairs, separates the held-out pairs well (benchmarks/results/reviewer_bench).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from teams_env.llm.base import Conversation

BUNDLED_HEAD = Path(__file__).parent / "data" / "review_head.json"
HEAD_FORMAT = 1

HEAD_TASK = (
    "Rewrite the instruction below. The rewrite may keep the same request or ask for more or "
    "something different."
)


def head_conversation(before: str, after: str) -> Conversation:
    """The chat whose last token's hidden state the heads read: ``after`` as the reply to ``before``."""
    return [
        {"role": "user", "content": f"{HEAD_TASK}\n\nInstruction: {before}"},
        {"role": "assistant", "content": after},
    ]


def prompt_fingerprint() -> str:
    """A hash of the head's prompt: a head is only valid on the prompt it was trained with."""
    sample = head_conversation("{before}", "{after}")
    return hashlib.sha256(json.dumps(sample).encode("utf-8")).hexdigest()[:16]


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float, iterations: int = 50) -> np.ndarray:
    """Weights (last entry the bias, not regularised) of an L2-regularised logistic regression,
    by Newton's method: exact, deterministic, and fast for a few hundred rows."""
    x = np.hstack([features, np.ones((len(features), 1))])
    y = labels.astype(np.float64)
    penalty = np.eye(x.shape[1]) * l2
    penalty[-1, -1] = 0.0
    weights = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = _sigmoid(x @ weights)
        gradient = x.T @ (p - y) + penalty @ weights
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return weights


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


def balanced_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold (a midpoint between adjacent scores) with the best balanced accuracy."""
    order = np.unique(scores)
    candidates = np.concatenate([[order[0] - 1e-6], (order[:-1] + order[1:]) / 2, [order[-1] + 1e-6]])
    positives, negatives = labels.astype(bool), ~labels.astype(bool)

    def balanced(t: float) -> float:
        return 0.5 * ((scores[positives] >= t).mean() + (scores[negatives] < t).mean())

    return float(max(candidates, key=balanced))


@dataclass(frozen=True)
class LogisticHead:
    weights: tuple[float, ...]
    """Per standardised feature, then the bias."""
    threshold: float
    """The probability from which the positive class is called."""

    def probability(self, standardised: np.ndarray) -> np.ndarray:
        w = np.asarray(self.weights)
        return _sigmoid(standardised @ w[:-1] + w[-1])


@dataclass(frozen=True)
class ReviewHead:
    """The two heads, the feature standardisation, and what they were trained on."""

    model_id: str
    """The reviewer backend's ``model_id`` the features came from; another model is refused."""
    prompt: str
    """:func:`prompt_fingerprint` at training time."""
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    not_equal: LogisticHead
    valid: LogisticHead
    training: dict[str, Any] = field(default_factory=dict)

    def predict(self, states: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(P(Not Equal), P(valid)) for each hidden-state vector."""
        matrix = np.asarray(states, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.mean):
            raise ValueError(
                f"review head expects hidden states of size {len(self.mean)}, got shape {matrix.shape}"
            )
        standardised = (matrix - np.asarray(self.mean)) / np.asarray(self.scale)
        return self.not_equal.probability(standardised), self.valid.probability(standardised)

    def save(self, path: str | os.PathLike[str]) -> None:
        data = {"format": HEAD_FORMAT, **_rounded(asdict(self))}
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_suffix(target.suffix + ".tmp")
        staging.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(staging, target)

    @classmethod
    def load(cls, path: str | os.PathLike[str] = BUNDLED_HEAD) -> ReviewHead:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: review head not found (train one with teams-rl train-reviewer)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.pop("format", None) != HEAD_FORMAT:
                raise ValueError(f"unsupported format (this version reads format {HEAD_FORMAT})")
            return cls(
                model_id=str(data["model_id"]),
                prompt=str(data["prompt"]),
                mean=tuple(data["mean"]),
                scale=tuple(data["scale"]),
                not_equal=LogisticHead(tuple(data["not_equal"]["weights"]), data["not_equal"]["threshold"]),
                valid=LogisticHead(tuple(data["valid"]["weights"]), data["valid"]["threshold"]),
                training=dict(data.get("training", {})),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a review head ({error})") from None


def _rounded(value: Any) -> Any:
    """Floats to 7 significant digits: the file stays small and reads the same everywhere."""
    if isinstance(value, float):
        return float(f"{value:.7g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def _fit_head(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray, l2: float, folds: int
) -> tuple[LogisticHead, dict[str, float]]:
    """A head on all rows, its threshold from out-of-fold predictions (folds by group)."""
    from teams_env.roc import roc_auc

    unique = np.unique(groups)
    fold_of_group = {g: i % folds for i, g in enumerate(unique)}
    fold = np.array([fold_of_group[g] for g in groups])
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
) -> ReviewHead:
    """Fit both heads. ``review_rows`` marks the rows whose Equal / Not Equal label is the question
    (the validity head sees every row). Rows of one ``group`` (a base instruction) share a fold."""
    states = np.asarray(states, dtype=np.float64)
    mean = states.mean(axis=0)
    scale = states.std(axis=0) + 1e-6
    standardised = (states - mean) / scale
    review_rows = review_rows.astype(bool)
    not_equal_head, not_equal_report = _fit_head(
        standardised[review_rows], not_equal[review_rows], groups[review_rows], l2, folds
    )
    valid_head, valid_report = _fit_head(standardised, valid, groups, l2, folds)
    return ReviewHead(
        model_id=model_id,
        prompt=prompt_fingerprint(),
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        not_equal=not_equal_head,
        valid=valid_head,
        training={"l2": l2, "folds": folds, "not_equal": not_equal_report, "valid": valid_report},
    )
