"""Run one function in a child Python process, so that a native crash in it (a segmentation fault
in llama.cpp, an illegal instruction from a build made for another CPU) ends the child, not the
caller. ``teams-rl doctor`` runs each role's real request this way, and so do the tests that load
a model in a setting that could crash natively.

The function is named ``module:function``; it takes string arguments and returns one line, which
the child prints as JSON for the parent to read back.
"""

from __future__ import annotations

import importlib
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ChildOutcome:
    """How a child ended: its exit status, the function's line (when it returned one) and stderr."""

    returncode: int
    line: str | None
    stderr: str

    @property
    def signal_name(self) -> str | None:
        """The signal that killed the child (``SIGSEGV``), or None when it exited by itself."""
        if self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.line is not None

    @property
    def last_error(self) -> str:
        """The last line the child wrote to stderr (an exception's message), or 'no output'."""
        return (self.stderr.strip().splitlines() or ["no output"])[-1]


def run_in_child(target: str, *args: str, timeout: float, env: dict[str, str] | None = None) -> ChildOutcome:
    """Call ``target`` (``module:function``) with ``args`` in a fresh interpreter and wait for it.

    Raises ``subprocess.TimeoutExpired`` when it runs past ``timeout`` seconds (the child is killed).
    """
    child = subprocess.run(
        [sys.executable, "-m", "teams_rl.child_process", target, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    lines = [line for line in child.stdout.splitlines() if line.startswith('{"line"')]
    line = json.loads(lines[-1])["line"] if lines else None
    return ChildOutcome(child.returncode, line, child.stderr)


def _child(target: str, *args: str) -> None:
    module, _, name = target.partition(":")
    function: Callable[..., str] = getattr(importlib.import_module(module), name)
    print(json.dumps({"line": function(*args)}), flush=True)


if __name__ == "__main__":
    _child(*sys.argv[1:])
