"""Where a run's numbers go: TensorBoard event files and ``metrics.jsonl`` in the run directory,
under CleanRL's names (``charts/...``, ``losses/...``) so runs compare across tools.

SB3 records ``train/...`` after each update; those become ``losses/...`` (``train/learning_rate``
becomes ``charts/learning_rate`` and ``time/fps`` becomes ``charts/SPS``). ``rollout/`` and the
other ``time/`` keys keep their SB3 names. Both files are appended to, so a resumed run continues
the same curves.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any

from stable_baselines3.common.logger import KVWriter, Logger, TensorBoardOutputFormat, filter_excluded_keys

RENAMED = {"train/learning_rate": "charts/learning_rate", "time/fps": "charts/SPS"}


def cleanrl_key(key: str) -> str:
    if key in RENAMED:
        return RENAMED[key]
    if key.startswith("train/"):
        return "losses/" + key.removeprefix("train/")
    return key


class CleanRLNames(KVWriter):
    """Passes every dump to ``writer`` under CleanRL's key names."""

    def __init__(self, writer: KVWriter) -> None:
        self.writer = writer

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0
    ) -> None:
        self.writer.write(
            {cleanrl_key(k): v for k, v in key_values.items()},
            {cleanrl_key(k): v for k, v in key_excluded.items()},
            step,
        )

    def close(self) -> None:
        self.writer.close()


class JsonLinesFormat(KVWriter):
    """One JSON object per dump (``{"step": ..., key: number, ...}``), appended to a file."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("a", encoding="utf-8")

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0
    ) -> None:
        values = filter_excluded_keys(key_values, key_excluded, "json")
        row: dict[str, Any] = {"step": int(step)}
        for key, value in sorted(values.items()):
            if isinstance(value, numbers.Integral):
                row[key] = int(value)
            elif isinstance(value, numbers.Real):
                row[key] = float(value)
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def run_logger(run_dir: Path, metrics_file: Path) -> Logger:
    writers: list[KVWriter] = [
        CleanRLNames(TensorBoardOutputFormat(str(run_dir))),
        CleanRLNames(JsonLinesFormat(metrics_file)),
    ]
    return Logger(folder=str(run_dir), output_formats=writers)
