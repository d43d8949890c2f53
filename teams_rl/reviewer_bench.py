"""The reviewer benchmark: labelled (before, after) pairs that measure a reviewer before its verdicts
become rewards.

Each pair says whether ``after`` is "Equal" to ``before`` (the same request) or "Not Equal" (it asks
for more or something else), and whether ``after`` is a valid rewrite (an instruction a person would
answer, not an answer, a copy or garbage). Two bundled sets were written by this project,
independently of each other: set A (``bundled``) and set B (``bundled-b``: other domains, other
styles of evolution), so a judge fitted on one is measured on the other. Their ``test`` splits are
never used to train or calibrate anything.

Rewrites that add input (:data:`INPUT_CATEGORIES`) are where a small reviewer used to pay for junk
(GitHub issue 18): data that fits the task (``coherent_input``: valid, Not Equal), data that does
not (``junk_input``: unrelated tables, nonsense code, data the instruction never uses; invalid),
and a phrase copied from one of the expert's demonstrations (``demonstration_leak``: invalid).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import teams_env
from teams_env.reward.reviewer import EQUAL, LABELS, NOT_EQUAL, Judgement
from teams_env.roc import roc_auc

ENV_DATA = Path(teams_env.__file__).parent / "data"
"""The labelled pair sets ship with the environment's data, beside the review head fitted on them."""
BUNDLED_BENCH = ENV_DATA / "reviewer_bench.jsonl"
BUNDLED_BENCH_B = ENV_DATA / "reviewer_bench_b.jsonl"
BUNDLED_BENCHES = {"bundled": BUNDLED_BENCH, "bundled-b": BUNDLED_BENCH_B}
"""Names of the bundled sets: A (``bundled``) and B (``bundled-b``), written independently."""
SPLITS = ("train", "test")

EQUAL_CATEGORIES = ("copy", "surface", "paraphrase")
ADDITION_CATEGORIES = (
    "add_constraint",
    "deepen",
    "concretize",
    "reasoning",
    "add_input",
    "breadth",
    "coherent_input",
)
INVALID_CATEGORIES = ("answer", "truncated", "garbled", "junk_input", "demonstration_leak")
CATEGORIES = EQUAL_CATEGORIES + ADDITION_CATEGORIES + INVALID_CATEGORIES
REVIEW_CATEGORIES = EQUAL_CATEGORIES + ADDITION_CATEGORIES
"""Where the Equal / Not Equal label is the question; in the others ``after`` is no valid rewrite."""
INPUT_CATEGORIES = ("coherent_input", "junk_input", "demonstration_leak")
"""Rewrites that add data: coherent data that fits the task, junk data, a copied demonstration."""
INPUT_TARGETS = {
    "coherent_input": (">=", 0.80),
    "junk_input": ("<=", 0.10),
    "demonstration_leak": ("<=", 0.0),
}
"""Reward rates the env's reviewer must reach on the held-out input pairs (GitHub issue 18)."""

FIELDS = ("id", "base", "split", "category", "before", "after", "label", "valid")

CATEGORY_ACTIONS = {
    "add_constraint": "add_constraints",
    "deepen": "deepening",
    "concretize": "concretizing",
    "reasoning": "increase_reasoning",
    "add_input": "complicate_input",
    "coherent_input": "complicate_input",
    "junk_input": "complicate_input",
    "breadth": "breadth",
}
"""The action whose rewrite a pair's category is. A judge that reads the action (a GOOD head)
judges the other pairs (copies, paraphrases, answers, garbage, leaks) under every action and
pays them if any action would: the strictest reading for pairs that should earn nothing."""


def reward_score(judgement: Judgement) -> float:
    """What the env's judge pays on, as a score: P(GOOD) where the head has a GOOD head, else
    P(Not Equal) x P(valid); 0 where a rule refused the rewrite."""
    if judgement.method == "rule":
        return 0.0
    if judgement.p_good is not None:
        return judgement.p_good
    return judgement.p_not_equal * (1.0 if judgement.p_valid is None else judgement.p_valid)


def judge_pairs(reviewer: Any, pairs: Sequence[LabelledPair]) -> list[Judgement]:
    """The reviewer's judgement of each pair; a judge that reads the action gets the action of the
    pair's category, and the other pairs are judged under every action and kept at the best one
    (:data:`CATEGORY_ACTIONS`). Each pair is read once."""
    from teams_env.actions import ACTION_NAMES

    head = getattr(reviewer, "head", None)
    if head is None or head.good is None or reviewer.method != "head":
        return reviewer.judge([(p.before, p.after) for p in pairs])
    known = [i for i, p in enumerate(pairs) if p.category in CATEGORY_ACTIONS]
    other = [i for i, p in enumerate(pairs) if p.category not in CATEGORY_ACTIONS]
    judged: dict[int, Judgement] = {}
    if known:
        actions = [ACTION_NAMES.index(CATEGORY_ACTIONS[pairs[i].category]) for i in known]
        judged |= dict(
            zip(known, reviewer.judge([(pairs[i].before, pairs[i].after) for i in known], actions=actions))
        )
    if other:
        every = reviewer.judge_every_action([(pairs[i].before, pairs[i].after) for i in other])
        judged |= {i: max(options, key=reward_score) for i, options in zip(other, every)}
    return [judged[i] for i in range(len(pairs))]


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


def bench_paths(spec: str) -> list[Path]:
    """The files a ``--bench`` value names: ``bundled`` (set A), ``bundled-b`` (set B) or a JSONL
    path, several joined by commas."""
    names = [part.strip() for part in spec.split(",") if part.strip()]
    if not names:
        raise ValueError("no benchmark named; use bundled, bundled-b or a JSONL file")
    return [BUNDLED_BENCHES.get(name, Path(name)) for name in names]


def load_benches(spec: str, *, splits: Sequence[str] = SPLITS) -> list[LabelledPair]:
    """The pairs of every file ``spec`` names (:func:`bench_paths`); an id or a base instruction
    found in two files is a one-line error (a base must stay in one split of one set)."""
    pairs: list[LabelledPair] = []
    owner: dict[str, Path] = {}
    for path in bench_paths(spec):
        loaded = load_pairs(path, splits=splits)
        for key in {p.id for p in loaded} | {f"base {p.base}" for p in loaded}:
            if key in owner and owner[key] != path:
                raise BenchFileError(f"{path}: {key!r} is also in {owner[key]}")
            owner[key] = path
        pairs += loaded
    return pairs


def evaluate_judgements(pairs: Sequence[LabelledPair], judgements: Sequence[Judgement]) -> dict[str, Any]:
    """How well ``judgements`` (one per pair, in order) match the labels.

    - ``review``: on the pairs where Equal / Not Equal is the question (:data:`REVIEW_CATEGORIES`),
      ROC AUC of P(Not Equal), balanced accuracy at the reviewer's decision, how often surface edits
      and paraphrases were called Equal and real additions Not Equal.
    - ``validity``: on every pair, precision and recall of calling a rewrite invalid.
    - ``reward``: on every pair, accuracy of the env's reward (valid and Not Equal, and GOOD where
      the judge has a GOOD head), the ROC AUC of what it pays on (:func:`reward_score`), and
      precision and recall of paying for a pair labelled rewarded (Not Equal and valid), with 95%
      Wilson intervals, overall and per action (:data:`CATEGORY_ACTIONS`).
    - ``categories``: per category, the share judged as labelled, the share judged valid as
      labelled, and the share rewarded.
    - ``input``: per input category (:data:`INPUT_CATEGORIES`), the share rewarded, the share the
      exact rules caught, and whether :data:`INPUT_TARGETS` is met.
    """
    review = [(p, j) for p, j in zip(pairs, judgements) if p.category in REVIEW_CATEGORIES]
    positives = [j.p_not_equal for p, j in review if p.not_equal]
    negatives = [j.p_not_equal for p, j in review if not p.not_equal]
    equal_kept = [not j.not_equal for p, j in review if p.category in ("surface", "paraphrase")]
    additions_found = [j.not_equal for p, j in review if p.category in ADDITION_CATEGORIES]
    hit_rate = _mean([j.not_equal for p, j in review if p.not_equal])
    equal_rate = _mean([not j.not_equal for p, j in review if not p.not_equal])
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
                "rewarded": float(np.mean([j.rewarded for _, j in rows])),
            }
    inputs = {}
    for category in INPUT_CATEGORIES:
        rows = [j for p, j in zip(pairs, judgements) if p.category == category]
        if rows:
            rewarded = float(np.mean([j.rewarded for j in rows]))
            sense, bound = INPUT_TARGETS[category]
            inputs[category] = {
                "pairs": len(rows),
                "rewarded": rewarded,
                "caught_by_rules": float(np.mean([j.method == "rule" for j in rows])),
                "target": f"rewarded {sense} {bound:.0%}",
                "met": rewarded >= bound if sense == ">=" else rewarded <= bound,
            }
    return {
        "pairs": len(pairs),
        "review": {
            "pairs": len(review),
            "roc_auc": roc_auc(positives, negatives) if positives and negatives else float("nan"),
            "balanced_accuracy": 0.5 * (hit_rate + equal_rate),
            "surface_and_paraphrase_called_equal": _mean(equal_kept),
            "additions_called_not_equal": _mean(additions_found),
        },
        "validity": {
            "roc_auc": _validity_auc(pairs, judgements),
            "precision_invalid": true_flags / max(1, sum(flagged)),
            "recall_invalid": true_flags / max(1, sum(invalid)),
            "valid_kept": _mean([j.valid for p, j in zip(pairs, judgements) if p.valid]),
        },
        "reward": {
            "accuracy": float(np.mean([p.rewarded == j.rewarded for p, j in zip(pairs, judgements)])),
            **_paid_for(pairs, judgements),
            "per_action": {
                action: _paid_for(*zip(*rows))
                for action in dict.fromkeys(CATEGORY_ACTIONS.values())
                if (
                    rows := [
                        (p, j)
                        for p, j in zip(pairs, judgements)
                        if CATEGORY_ACTIONS.get(p.category) == action
                    ]
                )
            },
        },
        "categories": categories,
        "input": inputs,
    }


def _paid_for(pairs: Sequence[LabelledPair], judgements: Sequence[Judgement]) -> dict[str, Any]:
    """:func:`paid_for` of the judgements against the pairs' rewarded label."""
    return paid_for(
        np.array([p.rewarded for p in pairs]),
        np.array([j.rewarded for j in judgements]),
        np.array([reward_score(j) for j in judgements]),
    )


def paid_for(
    labels: np.ndarray, paid: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, Any]:
    """How a judge's pay agrees with labels: ROC AUC of its ``scores`` (:func:`reward_score`) for
    the label; precision and recall of paying, weighted by ``weights`` where rows stand for
    different numbers of items (a stratified sample), with 95% Wilson intervals on the counts
    (None where there is nothing to divide by)."""
    from teams_rl.reading import wilson_interval

    labels, paid = np.asarray(labels, dtype=bool), np.asarray(paid, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=float)
    hits = int((labels & paid).sum())
    weighted_hits = float((weights * (labels & paid)).sum())
    return {
        "pairs": len(labels),
        "roc_auc": roc_auc(scores[labels], scores[~labels]) if 0 < labels.sum() < len(labels) else None,
        "precision": weighted_hits / float((weights * paid).sum()) if paid.any() else None,
        "precision_interval": wilson_interval(hits, int(paid.sum())) if paid.any() else None,
        "recall": weighted_hits / float((weights * labels).sum()) if labels.any() else None,
        "recall_interval": wilson_interval(hits, int(labels.sum())) if labels.any() else None,
    }


def _mean(values: Sequence[bool | float]) -> float:
    """The mean, NaN for no values (a subset of pairs may lack a kind)."""
    return float(np.mean(values)) if len(values) else float("nan")


def _validity_auc(pairs: Sequence[LabelledPair], judgements: Sequence[Judgement]) -> float:
    """ROC AUC of the reviewer's P(valid) for valid against invalid pairs (a rule's verdict counts as
    P(valid) = 0); NaN where the reviewer gives no P(valid) or one class is missing."""
    scores = [0.0 if j.method == "rule" else j.p_valid for j in judgements]
    if any(score is None for score in scores):
        return float("nan")
    valid = [s for p, s in zip(pairs, scores) if p.valid]
    invalid = [s for p, s in zip(pairs, scores) if not p.valid]
    return roc_auc(valid, invalid) if valid and invalid else float("nan")
