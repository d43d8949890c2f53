"""Where the evaluation commands write their reports."""

from __future__ import annotations

from pathlib import Path


def output_folder(out: str, model: str) -> Path:
    """``out`` if given; else the model's own folder when it is a local one (the report stays with
    the model), else the current folder. The folder is created."""
    if out:
        folder = Path(out).expanduser()
    elif Path(model).expanduser().is_dir():
        folder = Path(model).expanduser()
    else:
        folder = Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
