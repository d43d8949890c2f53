"""The reviewer benchmark: labelled (before, after) pairs that measure a reviewer before its verdicts
become rewards.

Each pair says whether ``after`` is "Equal" to ``before`` (the same request) or "Not Equal" (it asks
for more or something else), and whether ``after`` is a valid rewrite (an instruction a person would
answer, not an answer, a copy or garbage). The bundled file was written by this project; its
``test`` split is never used to train or calibrate anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from teams_env.reviewer import EQUAL, LABELS, NOT_EQUAL, Judgement
from teams_env.roc import roc_auc

BUNDLED_BENCH = Path(__file__).parent / "data" / "reviewer_bench.jsonl"
SPLITS = ("train", "test")

EQUAL_CATEGORIES = ("copy", "surface", "paraphrase")
ADDITION_CATEGORIES = ("add_constraint", "deepen", "concretize", "reasoning", "add_input", "breadth")
INVALID_CATEGORIES = ("answer", "truncated", "garbled")
CATEGORIES = EQUAL_CATEGORIES + ADDITION_CATEGORIES + INVALID_CATEGORIES
REVIEW_CATEGORIES = EQUAL_CATEGORIES + ADDITION_CATEGORIES
"""Where the Equal / Not Equal label is the question; in the others ``after`` is no rewrite at all."""

FIELDS = ("id", "base", "split", "category", "before", "after", "label", "valid")


class BenchFileError(ValueError):
    """A benchmark file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class LabelledPair:
    id: str
    base: str
    split: str
    category: str
    before: str
    after: str
    label: str
    valid: bool

    @property
    def not_equal(self) -> bool:
        return self.label == NOT_EQUAL

    @property
    def rewarded(self) -> bool:
        """What the env's reward should be: a valid rewrite that adds information."""
        return self.valid and self.not_equal


def _pair(record: object, where: str) -> LabelledPair:
    if not isinstance(record, dict):
        raise BenchFileError(f"{where}: expected a JSON object, got {type(record).__name__}")
    missing = [name for name in FIELDS if name not in record]
    if missing:
        raise BenchFileError(f"{where}: missing field '{missing[0]}'")
    for name in FIELDS[:-1]:
        if not isinstance(record[name], str) or not record[name].strip():
            raise BenchFileError(f"{where}: field '{name}' must be a non-empty string")
    if record["label"] not in LABELS:
        raise BenchFileError(f"{where}: unknown label '{record['label']}'; use '{EQUAL}' or '{NOT_EQUAL}'")
    if record["split"] not in SPLITS:
        raise BenchFileError(f"{where}: unknown split '{record['split']}'; use one of {', '.join(SPLITS)}")
    if record["category"] not in CATEGORIES:
        raise BenchFileError(
            f"{where}: unknown category '{record['category']}'; use one of {', '.join(CATEGORIES)}"
        )
    if not isinstance(record["valid"], bool):
        raise BenchFileError(f"{where}: field 'valid' must be true or false")
    return LabelledPair(**{name: record[name] for name in FIELDS})


def load_pairs(
    path: str | os.PathLike[str] = BUNDLED_BENCH, *, splits: Sequence[str] = SPLITS
) -> list[LabelledPair]:
    """The pairs of a benchmark JSONL file that belong to ``splits``; bad input is a one-line error."""
    path = Path(path)
    unknown = [split for split in splits if split not in SPLITS]
    if unknown:
        raise ValueError(f"unknown split '{unknown[0]}'; use one of {', '.join(SPLITS)}")
    if not path.is_file():
        raise BenchFileError(f"{path}: benchmark file not found")
    pairs: list[LabelledPair] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise BenchFileError(f"{where}: not valid JSON ({error.msg})") from None
            pair = _pair(record, where)
            if pair.id in seen:
                raise BenchFileError(f"{where}: duplicate id '{pair.id}'")
            seen.add(pair.id)
            if pair.split in splits:
                pairs.append(pair)
    if not pairs:
        raise BenchFileError(f"{path}: no pairs in split {', '.join(splits)}")
    return pairs


def evaluate_judgements(pairs: Sequence[LabelledPair], judgements: Sequence[Judgement]) -> dict[str, Any]:
    """How well ``judgements`` (one per pair, in order) match the labels.

    - ``review``: on the pairs where Equal / Not Equal is the question (:data:`REVIEW_CATEGORIES`),
      ROC AUC of P(Not Equal), balanced accuracy at the reviewer's decision, how often surface edits
      and paraphrases were called Equal and real additions Not Equal.
    - ``validity``: on every pair, precision and recall of calling a rewrite invalid.
    - ``reward``: on every pair, accuracy of the env's reward (valid and Not Equal).
    - ``categories``: per category, the share judged as labelled and the share judged valid as labelled.
    """
    review = [(p, j) for p, j in zip(pairs, judgements) if p.category in REVIEW_CATEGORIES]
    positives = [j.p_not_equal for p, j in review if p.not_equal]
    negatives = [j.p_not_equal for p, j in review if not p.not_equal]
    equal_kept = [not j.not_equal for p, j in review if p.category in ("surface", "paraphrase")]
    additions_found = [j.not_equal for p, j in review if p.category in ADDITION_CATEGORIES]
    hit_rate = float(np.mean([j.not_equal for p, j in review if p.not_equal]))
    equal_rate = float(np.mean([not j.not_equal for p, j in review if not p.not_equal]))
    flagged = [not j.valid for j in judgements]
    invalid = [not p.valid for p in pairs]
    true_flags = sum(f and i for f, i in zip(flagged, invalid))
    categories = {}
    for category in CATEGORIES:
        rows = [(p, j) for p, j in zip(pairs, judgements) if p.category == category]
        if rows:
            categories[category] = {
                "pairs": len(rows),
                "label_accuracy": float(np.mean([p.not_equal == j.not_equal for p, j in rows])),
                "validity_accuracy": float(np.mean([p.valid == j.valid for p, j in rows])),
                "mean_p_not_equal": float(np.mean([j.p_not_equal for _, j in rows])),
            }
    return {
        "pairs": len(pairs),
        "review": {
            "pairs": len(review),
            "roc_auc": roc_auc(positives, negatives) if positives and negatives else float("nan"),
            "balanced_accuracy": 0.5 * (hit_rate + equal_rate),
            "surface_and_paraphrase_called_equal": float(np.mean(equal_kept)),
            "additions_called_not_equal": float(np.mean(additions_found)),
        },
        "validity": {
            "precision_invalid": true_flags / max(1, sum(flagged)),
            "recall_invalid": true_flags / max(1, sum(invalid)),
            "valid_kept": float(np.mean([j.valid for p, j in zip(pairs, judgements) if p.valid])),
        },
        "reward": {"accuracy": float(np.mean([p.rewarded == j.rewarded for p, j in zip(pairs, judgements)]))},
        "categories": categories,
    }
