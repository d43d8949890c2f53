"""Version floors that code checks when it is imported, where an older release would fail later
and obscurely (a missing private attribute, a renamed argument).

The floors are the versions the test suite has passed on; pyproject.toml states the same ones
(tests/test_dependencies.py keeps the two in step).
"""

from __future__ import annotations

import re
from importlib import metadata

LLAMA_CPP_PYTHON_FLOOR = "0.3.36"
"""The llamacpp backend drives llama.cpp through ``llama_cpp._internals`` and sets ``kv_unified``."""

TRANSFORMERS_FLOOR = "5.23.0"
"""The SFT stage passes a share of steps as ``warmup_steps`` and the hf backend loads with
``dtype=``: both are transformers 5 arguments."""


def _release(version: str) -> tuple[int, ...]:
    """The numeric release of a version string: "0.3.36rc1" -> (0, 3, 36), "2.13.0+cpu" -> (2, 13, 0)."""
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    if match is None:
        return ()
    numbers = [int(part) for part in match.group(0).split(".")]
    while numbers and numbers[-1] == 0:  # 5.23 and 5.23.0 are the same release
        numbers.pop()
    return tuple(numbers)


def require(distribution: str, floor: str, needed_by: str) -> None:
    """Raise a one-line ImportError where an older ``distribution`` than ``floor`` is installed.

    A distribution that is not installed at all is left to the import that needs it (its error
    already names the module).
    """
    try:
        installed = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return
    if _release(installed) < _release(floor):
        raise ImportError(
            f"{needed_by} needs {distribution}>={floor}, but {installed} is installed; "
            f"upgrade with: pip install -U '{distribution}>={floor}'"
        )
