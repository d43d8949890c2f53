"""What every benchmark script shares: the machine and versions it ran on, a Markdown table, and one
JSON file per benchmark under ``benchmarks/results/``."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from teams_env.system_info import machine

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def command_line() -> str:
    """The command that produced a result, to paste and rerun."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    program = ["-m", spec.name] if spec is not None else [os.path.relpath(sys.argv[0])]
    return "python " + " ".join(shlex.quote(arg) for arg in [*program, *sys.argv[1:]])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(name: str, payload: dict[str, Any], markdown: str | None = None) -> Path:
    """Write ``results/NAME.json`` (and ``NAME.md`` when given) with the machine and the command."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": command_line(),
        "machine": machine(),
        **payload,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if markdown is not None:
        (RESULTS_DIR / f"{name}.md").write_text(markdown.rstrip() + "\n", encoding="utf-8")
    return path


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
