"""Demonstrations of the six rewrites, the specialist expert's training data: one JSON object per
line with ``action`` (a rewrite action's name), ``instruction`` (before) and ``rewrite`` (after).

The bundled set was written for this project and read against the reading rubric
(``docs/reading-protocol.md``); see its data card beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from teams_env.actions import ACTION_NAMES, ACTIONS, specialist_conversation
from teams_rl.finetune.records import read_records

BUNDLED_DEMONSTRATIONS = Path(__file__).with_name("data") / "expert_demonstrations.jsonl"


@dataclass(frozen=True)
class Demonstration:
    action: str
    instruction: str
    rewrite: str

    def prompt_completion(self) -> tuple[list[dict[str, str]], str]:
        """The specialist's prompt (system and user turns) and the reply it should write."""
        action = ACTIONS[ACTION_NAMES.index(self.action)]
        return specialist_conversation(action, self.instruction), self.rewrite


def demonstrations_path(source: str) -> Path:
    return BUNDLED_DEMONSTRATIONS if source == "bundled" else Path(source).expanduser()


def read_demonstrations(source: str) -> list[Demonstration]:
    """Every demonstration of a file; a bad line is a one-line error naming file and line."""
    path = demonstrations_path(source)
    if not path.is_file():
        raise FileNotFoundError(f"demonstrations file not found: {path}")
    demonstrations = []
    seen: set[tuple[str, str]] = set()
    for where, row in read_records(path):
        for key in ("action", "instruction", "rewrite"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise ValueError(f"{where}: '{key}' must be a non-empty string")
        if row["action"] not in ACTION_NAMES:
            raise ValueError(f"{where}: unknown action '{row['action']}'; one of {', '.join(ACTION_NAMES)}")
        if row["rewrite"].strip() == row["instruction"].strip():
            raise ValueError(f"{where}: the rewrite is a copy of the instruction")
        key = (row["action"], row["instruction"].strip())
        if key in seen:
            raise ValueError(f"{where}: a second demonstration of '{row['action']}' on the same instruction")
        seen.add(key)
        demonstrations.append(
            Demonstration(row["action"], row["instruction"].strip(), row["rewrite"].strip())
        )
    if not demonstrations:
        raise ValueError(f"{path}: no demonstrations")
    return demonstrations
