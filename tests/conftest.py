"""Shared fixtures: a private LLM cache per test session, and fast environments on the scripted
backend with the model-free hashing encoder. Risky native work runs through ``isolated.py``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from teams_env.llm.scripted import ScriptedBackend

pytest_plugins = ["pytester"]  # tests of how a failing test is reported run an inner pytest


@pytest.fixture(scope="session", autouse=True)
def _private_llm_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Real-model tests share one cache file for the session, never the user's own cache."""
    path = tmp_path_factory.mktemp("llm-cache") / "llm-cache.sqlite"
    previous = os.environ.get("TEAMS_RL_CACHE")
    os.environ["TEAMS_RL_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("TEAMS_RL_CACHE", None)
    else:
        os.environ["TEAMS_RL_CACHE"] = previous


@pytest.fixture
def scripted_env_kwargs() -> Callable[..., dict[str, Any]]:
    """Keyword arguments for a fast, deterministic TeaMsInstructEnv (no model, no cache)."""

    def make(**overrides: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"expert": ScriptedBackend(), "encoder": "hashing", "cache": None}
        kwargs.update(overrides)
        return kwargs

    return make


@pytest.fixture
def fit_good() -> Callable[..., Any]:
    """Fit a GOOD head on synthetic rewrites with the small-data settings the tests share: groups
    of four rows, four folds, four principal directions of the hidden state."""
    from teams_rl.review_head_training import fit_good_head

    def fit(head, states, extra, actions, good, good_features, precision=0.9):
        return fit_good_head(
            head,
            head.standardise(states, extra),
            actions,
            good,
            np.arange(len(good)) // 4,
            good_features=good_features,
            l2=1.0,
            folds=4,
            components=4,
            extra_weight=5.0,
            precision=precision,
        )

    return fit


class FaultTally:
    """Faults injected and records checked by the fault-injection suite (tests/test_faults.py)."""

    def __init__(self) -> None:
        self.faults: list[str] = []
        self.records = 0

    def record(self, fault: str, records_checked: int) -> None:
        self.faults.append(fault)
        self.records += records_checked


_FAULTS = FaultTally()


@pytest.fixture(scope="session")
def fault_tally() -> FaultTally:
    return _FAULTS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FAULTS.faults:
        terminalreporter.write_line(
            f"fault injection: {len(_FAULTS.faults)} faults tried, {_FAULTS.records} records checked"
        )
