"""Fixtures of the fine-tuning tests: small chat datasets in the generation stage's format, and one
model fine-tuned on them for the whole session (the slow tests share it)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from teams_rl.cli import main

THINGS = ["lamp", "kettle", "bicycle", "violin", "teapot", "compass", "lantern", "clock", "drum", "kite"]
COLOURS = ["red", "blue", "green", "amber", "violet", "silver", "golden", "grey"]
PLACES = ["harbour", "library", "orchard", "bakery", "station", "garden", "museum", "market", "bridge"]
MEMBERS = 12
NON_MEMBERS = 16


def chat_rows(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """Rows shaped like the generation stage's dataset.jsonl: TRL ``messages`` plus the Alpaca fields
    and provenance. Each answer holds details (weight, place) that only memorisation can predict."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        name = f"{rng.choice(COLOURS)} {rng.choice(THINGS)} {rng.randint(100, 999)}"
        instruction = f"Describe the {name} in one sentence."
        output = f"The {name} weighs {rng.randint(100, 999)} grams and sits near the {rng.choice(PLACES)}."
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": instruction},
                    {"role": "assistant", "content": output},
                ],
                "instruction": instruction,
                "input": "",
                "output": output,
                "seed_id": f"test-{seed}-{index}",
                "actions": ["add_constraints"],
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    def make(count: int = 8, seed: int = 0, name: str = "dataset.jsonl") -> Path:
        return write_jsonl(tmp_path / name, chat_rows(count, seed))

    return make


@pytest.fixture(scope="session")
def chat_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One pool of rows split into the training set (members, with a stats.json beside it) and two
    disjoint non-member sets from the same distribution."""
    folder = tmp_path_factory.mktemp("chat-data")
    pool = chat_rows(MEMBERS + 2 * NON_MEMBERS, seed=7)
    (folder / "stats.json").write_text(json.dumps({"kept_items": MEMBERS, "expert_queries": 2 * MEMBERS}))
    return {
        "members": write_jsonl(folder / "dataset.jsonl", pool[:MEMBERS]),
        "non_members_a": write_jsonl(folder / "non_members_a.jsonl", pool[MEMBERS : MEMBERS + NON_MEMBERS]),
        "non_members_b": write_jsonl(folder / "non_members_b.jsonl", pool[MEMBERS + NON_MEMBERS :]),
    }


@pytest.fixture(scope="session")
def finetuned_model(tmp_path_factory: pytest.TempPathFactory, chat_data: dict[str, Path]) -> Path:
    """The embedded model fully fine-tuned on the members for three epochs, through the CLI."""
    out = tmp_path_factory.mktemp("sft") / "model"
    options = {
        "epochs": 3,
        "batch-size": 4,
        "learning-rate": 5e-4,
        "lr-scheduler": "constant",
        "max-length": 96,
    }
    arguments = ["sft", "--data", str(chat_data["members"]), "--out", str(out)]
    arguments += [item for name, value in options.items() for item in (f"--{name}", str(value))]
    assert main(arguments) == 0
    return out
