"""Loads the questions of the ``teams_rl_general_knowledge`` task from the JSONL beside this file
(the harness resolves ``data_files`` against the working directory, so the file is found here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict

QUESTIONS = Path(__file__).with_name("questions.jsonl")
SPLITS = ("train", "test")


def load(**_: Any) -> DatasetDict:
    """The ``train`` (few-shot pool) and ``test`` splits; the harness passes task metadata, unused."""
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return DatasetDict(
        {split: Dataset.from_list([r for r in rows if r["split"] == split]) for split in SPLITS}
    )
