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

from teams_env.reviewer import EQUAL, LABELS, NOT_EQUAL

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
