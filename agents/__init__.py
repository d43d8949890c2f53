"""agents: train the TeaMs-RL instructor with sb3-contrib TRPO or any SB3 algorithm, compare it with
baselines and custom agents, and evaluate saved policies.

Importing the package stays cheap (the CLI imports :mod:`teams_rl.agents.commands` for every command); the
names below load their modules, and SB3 with them, on first use. Training is
``teams_rl.agents.training.train.train`` (not exported here: the name is its module's).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from teams_rl.agents.baselines.simple import FixedSequenceAgent, RandomContinuousAgent, UniformRandomAgent
    from teams_rl.agents.evaluation import EvaluationResult, evaluate_agent
    from teams_rl.agents.policy import Agent, load_agent, saved_env_kwargs

_LAZY = {
    "Agent": "teams_rl.agents.policy",
    "load_agent": "teams_rl.agents.policy",
    "saved_env_kwargs": "teams_rl.agents.policy",
    "evaluate_agent": "teams_rl.agents.evaluation",
    "EvaluationResult": "teams_rl.agents.evaluation",
    "UniformRandomAgent": "teams_rl.agents.baselines.simple",
    "FixedSequenceAgent": "teams_rl.agents.baselines.simple",
    "RandomContinuousAgent": "teams_rl.agents.baselines.simple",
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
