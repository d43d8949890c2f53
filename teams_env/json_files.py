"""Reading the small JSON files a run or a model writes beside itself (action codecs, run options,
manifests): one way to turn a missing, damaged or foreign file into a one-line error naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json_object(
    path: Path, what: str, *, format: str | None = None, version: int | None = None
) -> dict[str, Any]:
    """The JSON object in ``path``, which should be ``what`` (e.g. "an action codec"). With
    ``format``/``version``, its ``"format"`` and ``"version"`` keys must match (files that name
    what they are). Errors: ``FileNotFoundError`` or ``ValueError``, one line each."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not found; expected {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not {what} (invalid JSON: {error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not {what} (expected a JSON object)")
    if format is not None and data.get("format") != format:
        raise ValueError(f"{path}: not {what} (no 'format': '{format}')")
    if version is not None and data.get("version") != version:
        raise ValueError(f"{path}: {what} of version {data.get('version')!r}; this version reads {version}")
    return data
