"""An append-only JSONL journal that survives being killed at any moment.

Each record is one line written with a single ``write`` and flushed to disk before the next. A
process killed mid-write leaves at most one partial last line; opening the journal drops it, so
every record read back is complete and none is read twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Journal:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = list(self._read_and_repair())

    def _read_and_repair(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # a partial last line from an interrupted write
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))
        for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{self.path}:{number}: damaged journal line ({error.msg})") from error

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.records.append(record)


def write_jsonl_atomically(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace ``path`` with ``rows`` in one rename, so readers see the old file or the new one."""
    staging = path.with_name(path.name + ".tmp")
    with open(staging, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSONL file ([] when it does not exist yet); blank lines are skipped."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append complete lines in one write."""
    if rows:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
            handle.flush()
