"""agents: train the TeaMs-RL instructor with sb3-contrib TRPO or any SB3 algorithm, compare it with
baselines and custom agents, and evaluate saved policies.

Importing the package stays cheap (the CLI imports :mod:`agents.config` for every command); the
names below load their modules, and SB3 with them, on first use. Training is
``agents.train.train`` (not exported here: the name is its module's).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.baselines import FixedSequenceAgent, RandomContinuousAgent, UniformRandomAgent
    from agents.evaluate import EvaluationResult, evaluate_agent
    from agents.policy import Agent, load_agent, saved_env_kwargs

_LAZY = {
    "Agent": "agents.policy",
    "load_agent": "agents.policy",
    "saved_env_kwargs": "agents.policy",
    "evaluate_agent": "agents.evaluate",
    "EvaluationResult": "agents.evaluate",
    "UniformRandomAgent": "agents.baselines",
    "FixedSequenceAgent": "agents.baselines",
    "RandomContinuousAgent": "agents.baselines",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agents' has no attribute '{name}'")


__all__ = [
    "Agent",
    "EvaluationResult",
    "FixedSequenceAgent",
    "RandomContinuousAgent",
    "UniformRandomAgent",
    "evaluate_agent",
    "load_agent",
    "saved_env_kwargs",
]
