"""Run a test's risky native part (loading a real model in a setting that could segfault) in a
child process, so that a crash fails that one test with the signal named instead of killing the
whole pytest run. The functions it runs live in ``child_checks.py``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from teams_rl.child_process import run_in_child

TESTS_DIR = Path(__file__).resolve().parent


def run_isolated(target: str, *args: str, timeout: float = 600) -> str:
    """Run ``target`` (``module:function``; modules of tests/ are found) in a child process and
    return its line. A native crash fails the calling test naming the signal; an exception fails it
    with its last line."""
    path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    try:
        outcome = run_in_child(target, *args, timeout=timeout, env={**os.environ, "PYTHONPATH": path})
    except subprocess.TimeoutExpired:
        pytest.fail(f"{target} gave no answer within {timeout:.0f} s in its child process")
    if outcome.signal_name:
        pytest.fail(f"{target} crashed natively in its child process: killed by {outcome.signal_name}")
    if not outcome.ok:
        pytest.fail(f"{target} failed in its child process: {outcome.last_error}")
    assert outcome.line is not None
    return outcome.line
