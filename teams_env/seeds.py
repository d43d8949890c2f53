"""Seed instructions: the bundled set, Alpaca-style JSON, JSONL, or a Hugging Face dataset.

The format: a ``.jsonl`` file with one JSON object per line, or a ``.json`` list of such objects
(Alpaca's). Each object needs an ``instruction`` text; ``input`` (data the instruction works on),
``id`` (stable, else derived from the text) and ``domain`` are optional; other keys are ignored.

Every problem names the file and line (or record) it comes from. A bad row (not JSON, not an
object, no ``instruction`` text, an empty one) stops loading with one line naming it, unless
``skip_bad_lines`` is set: then such rows are skipped and counted, so one bad row never costs the
rest of a large file. Duplicates are always skipped and counted. :class:`SeedSet` says what was
skipped and why.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

BUNDLED = "bundled"
HF_PREFIX = "hf:"


class SeedFileError(ValueError):
    """A seed source that cannot be read (missing, not JSON, not UTF-8, wrong shape, a bad row)."""


BAD_ROWS = ("invalid_json", "not_an_object", "no_instruction", "empty_instruction")
"""Reasons a row is bad input (an error unless bad lines are skipped); duplicates are not."""


@dataclass(frozen=True)
class SeedInstruction:
    id: str
    instruction: str
    input: str = ""
    domain: str = ""

    @property
    def text(self) -> str:
        """What the environment rewrites: the instruction, followed by its input if it has one."""
        return self.instruction + ("\n\n" + self.input if self.input else "")


@dataclass
class SeedSet:
    seeds: list[SeedInstruction]
    source: str
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    """One line per skipped row: where it was and why (the first 100 are kept)."""

    def __len__(self) -> int:
        return len(self.seeds)

    def __iter__(self) -> Iterator[SeedInstruction]:
        return iter(self.seeds)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise SeedFileError(f"{path}: seed file not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SeedFileError(
            f"{path}: not UTF-8 text (byte {error.start}); re-encode the file as UTF-8"
        ) from error


def _records_from_file(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, record) pairs from a JSON list or a JSONL file."""
    text = _read_text(path)
    stripped = text.lstrip()
    if path.suffix.lower() == ".jsonl" or (stripped and stripped[0] == "{"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{number}", json.loads(line)
            except json.JSONDecodeError as error:
                yield f"{path}:{number}", SeedFileError(f"invalid JSON ({error.msg})")
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SeedFileError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from error
    if not isinstance(data, list):
        raise SeedFileError(
            f"{path}: expected a JSON list of {{instruction, input, output}} objects, got {type(data).__name__}"
        )
    for index, record in enumerate(data):
        yield f"{path}[{index}]", record


def _records_from_hub(name: str) -> Iterator[tuple[str, Any]]:
    dataset_name, _, split = name.partition("@")
    try:
        from datasets import load_dataset
    except ImportError as error:
        raise SeedFileError(
            "loading seeds from the Hugging Face Hub needs: pip install 'teams-rl[hub]'"
        ) from error
    try:
        dataset = load_dataset(dataset_name, split=split or "train")
    except Exception as error:  # network, auth or name problems all end here
        raise SeedFileError(f"{HF_PREFIX}{name}: cannot load dataset ({error})") from error
    for index, record in enumerate(dataset):
        yield f"{HF_PREFIX}{name}[{index}]", record


def _bundled_path() -> Path:
    return Path(str(resources.files("teams_env") / "data" / "seeds.jsonl"))


def _stable_id(instruction: str, input_text: str) -> str:
    return "seed-" + hashlib.sha256((instruction + "\x00" + input_text).encode("utf-8")).hexdigest()[:12]


def parse_records(
    records: Iterable[tuple[str, Any]], source: str, *, skip_bad_lines: bool = False
) -> SeedSet:
    seeds: list[SeedInstruction] = []
    skipped: Counter[str] = Counter()
    problems: list[str] = []
    seen_text: set[str] = set()
    seen_ids: set[str] = set()

    def skip(where: str, reason: str, detail: str) -> None:
        if reason in BAD_ROWS and not skip_bad_lines:
            raise SeedFileError(f"{where}: {detail}; fix the line, or skip such lines with --skip-bad-lines")
        skipped[reason] += 1
        if len(problems) < 100:
            problems.append(f"{where}: {detail}")

    for where, record in records:
        if isinstance(record, SeedFileError):
            skip(where, "invalid_json", str(record))
            continue
        if not isinstance(record, dict):
            skip(where, "not_an_object", f"expected an object, got {type(record).__name__}")
            continue
        instruction = record.get("instruction")
        if not isinstance(instruction, str):
            skip(where, "no_instruction", "no 'instruction' text field")
            continue
        instruction = instruction.strip()
        input_text = record.get("input") or ""
        input_text = input_text.strip() if isinstance(input_text, str) else json.dumps(input_text)
        if not instruction:
            skip(where, "empty_instruction", "empty 'instruction'")
            continue
        key = " ".join((instruction + " " + input_text).lower().split())
        if key in seen_text:
            skip(where, "duplicate", "duplicate of an earlier seed")
            continue
        seed_id = str(record.get("id") or _stable_id(instruction, input_text))
        if seed_id in seen_ids:
            skip(where, "duplicate_id", f"id '{seed_id}' already used")
            continue
        seen_text.add(key)
        seen_ids.add(seed_id)
        seeds.append(SeedInstruction(seed_id, instruction, input_text, str(record.get("domain") or "")))
    return SeedSet(seeds, source, skipped, problems)


def load_seeds(
    source: str | Path = BUNDLED,
    *,
    limit: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    skip_bad_lines: bool = False,
) -> SeedSet:
    """Load seeds from ``"bundled"``, a ``.json`` list or ``.jsonl`` file, or ``"hf:NAME[@split]"``
    (e.g. ``hf:tatsu-lab/alpaca``). ``shuffle`` (with ``seed``) happens before ``limit``. A bad
    row is a :class:`SeedFileError` naming it, unless ``skip_bad_lines``."""
    text = str(source)
    if text == BUNDLED:
        records = _records_from_file(_bundled_path())
    elif text.startswith(HF_PREFIX):
        records = _records_from_hub(text[len(HF_PREFIX) :])
    else:
        records = _records_from_file(Path(text).expanduser())
    seed_set = parse_records(records, text, skip_bad_lines=skip_bad_lines)
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(seed_set.seeds))
        seed_set.seeds = [seed_set.seeds[i] for i in order]
    if limit is not None:
        if limit < 1:
            raise ValueError(f"seed limit must be at least 1, got {limit}")
        seed_set.seeds = seed_set.seeds[:limit]
    if not seed_set.seeds:
        detail = f" ({'; '.join(seed_set.problems[:3])})" if seed_set.problems else ""
        raise SeedFileError(f"{text}: no usable seed instructions{detail}")
    return seed_set
