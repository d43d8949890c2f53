"""Reading the data files of the fine-tuning stage, with errors that name the file and line.

- Chat data (``sft``, ``privacy``): our ``dataset.jsonl``, one JSON object per line with a
  ``messages`` list of ``{role, content}`` (TRL's conversational format). ``privacy`` also takes
  plain-text JSONL rows with a ``text`` field.
- Instruction files (``diversity``): our ``dataset.jsonl`` (``instruction`` + ``input``, or the
  first user message), Alpaca JSON (a list of objects), JSONL with ``instruction`` or ``text``,
  or ``.txt`` with one instruction per line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Conversation = list[dict[str, str]]
Example = Conversation | str
"""A chat, or a plain text (privacy's plain-text rows)."""

ROLES = ("system", "user", "assistant")


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start})") from error


def _jsonl_records(path: Path, text: str) -> list[tuple[str, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            records.append((where, json.loads(line)))
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: invalid JSON ({error.msg} at column {error.colno})") from None
    return records


def _json_list_records(path: Path, text: str) -> list[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
    return [(f"{path}: item {index}", item) for index, item in enumerate(data)]


def read_records(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, object) for each row of a JSONL file or a JSON list; ``where`` is ``file:line`` or
    ``file: item N``. An empty file and a row that is not an object are errors."""
    file = Path(path).expanduser()
    text = _read_text(file)
    is_json_list = file.suffix.lower() == ".json" or text.lstrip().startswith("[")
    records = _json_list_records(file, text) if is_json_list else _jsonl_records(file, text)
    if not records:
        raise ValueError(f"{file}: no rows (empty file)")
    for where, record in records:
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return records


def _conversation(messages: Any, where: str) -> Conversation:
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    for index, message in enumerate(messages):
        if not (isinstance(message, dict) and message.get("role") in ROLES):
            raise ValueError(f"{where}: message {index} needs a role among {', '.join(ROLES)}")
        if not isinstance(message.get("content"), str):
            raise ValueError(f"{where}: message {index} needs a text 'content'")
    if not any(message["role"] == "assistant" for message in messages):
        raise ValueError(f"{where}: 'messages' has no assistant turn to learn from")
    return [{"role": message["role"], "content": message["content"]} for message in messages]


def read_conversations(path: str | Path) -> list[Conversation]:
    """The ``messages`` of every row of a chat dataset (our ``dataset.jsonl``)."""
    conversations = []
    for where, record in read_records(path):
        if "messages" not in record:
            raise ValueError(
                f"{where}: no 'messages' field (expected TRL's chat format: a list of {{role, content}})"
            )
        conversations.append(_conversation(record["messages"], where))
    return conversations


def read_examples(path: str | Path) -> list[Example]:
    """Rows with ``messages`` as chats, rows with a ``text`` field as plain text."""
    examples: list[Example] = []
    for where, record in read_records(path):
        if "messages" in record:
            examples.append(_conversation(record["messages"], where))
        elif isinstance(record.get("text"), str) and record["text"].strip():
            examples.append(record["text"])
        else:
            raise ValueError(f"{where}: expected a 'messages' list or a non-empty 'text' field")
    return examples


def _instruction(record: dict[str, Any], where: str) -> str:
    if isinstance(record.get("instruction"), str) and record["instruction"].strip():
        extra = record.get("input")
        return record["instruction"] + (f"\n\n{extra}" if isinstance(extra, str) and extra.strip() else "")
    if isinstance(record.get("text"), str) and record["text"].strip():
        return record["text"]
    if "messages" in record:
        conversation = record["messages"]
        users = [m.get("content") for m in conversation if isinstance(m, dict) and m.get("role") == "user"]
        if users and isinstance(users[0], str) and users[0].strip():
            return users[0]
    raise ValueError(f"{where}: no instruction (expected 'instruction', 'text', or a user message)")


def read_instructions(path: str | Path) -> list[str]:
    """The instructions of a dataset, Alpaca JSON, JSONL or ``.txt`` file (one per line)."""
    file = Path(path).expanduser()
    if file.suffix.lower() == ".txt":
        lines = [line.strip() for line in _read_text(file).splitlines()]
        instructions = [line for line in lines if line]
        if not instructions:
            raise ValueError(f"{file}: no instructions (empty file)")
        return instructions
    return [_instruction(record, where) for where, record in read_records(file)]
