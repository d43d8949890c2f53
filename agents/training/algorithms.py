"""The SB3 and sb3-contrib algorithms that can train the instructor, and which environment each uses.

Rule for the action type: ``auto`` takes the first type an algorithm supports. TRPO, PPO, A2C,
RecurrentPPO and ARS support both and default to ``continuous`` (``TeaMsInstruct-v0``, the paper's
encoded action prompts); SAC, TD3, DDPG, TQC and CrossQ are continuous only; DQN and QR-DQN are
discrete only (``TeaMsInstructDiscrete-v0``). Asking for a type an algorithm does not support is an
error, never a silent switch. MaskablePPO is left out: every action is always valid here, which
makes it PPO.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from teams_env import ACTION_TYPES, env_id

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

CONTINUOUS_ONLY = ("continuous",)
BOTH = ("continuous", "discrete")
DISCRETE_ONLY = ("discrete",)


@dataclass(frozen=True)
class Algorithm:
    name: str
    class_path: str
    """``module:Class`` of the SB3 / sb3-contrib class."""
    action_types: tuple[str, ...]
    """Supported action types; the first is the default."""

    def load_class(self) -> type[BaseAlgorithm]:
        module, _, name = self.class_path.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except ImportError as error:
            raise RuntimeError(
                f"algorithm '{self.name}' needs {module}: pip install 'teams-rl[agents]' ({error})"
            ) from error

    def resolve_action_type(self, requested: str) -> str:
        """``requested`` (``auto``, ``continuous`` or ``discrete``) as a supported action type."""
        if requested == "auto":
            return self.action_types[0]
        if requested not in ACTION_TYPES:
            raise ValueError(f"action_type must be auto, continuous or discrete, got '{requested}'")
        if requested not in self.action_types:
            raise ValueError(
                f"algorithm '{self.name}' does not support {requested} actions "
                f"({env_id(requested)}); it supports: {', '.join(self.action_types)}"
            )
        return requested


ALGORITHMS: dict[str, Algorithm] = {
    algorithm.name: algorithm
    for algorithm in (
        Algorithm("trpo", "sb3_contrib:TRPO", BOTH),
        Algorithm("ppo", "stable_baselines3:PPO", BOTH),
        Algorithm("a2c", "stable_baselines3:A2C", BOTH),
        Algorithm("ppo_lstm", "sb3_contrib:RecurrentPPO", BOTH),
        Algorithm("ars", "sb3_contrib:ARS", BOTH),
        Algorithm("sac", "stable_baselines3:SAC", CONTINUOUS_ONLY),
        Algorithm("td3", "stable_baselines3:TD3", CONTINUOUS_ONLY),
        Algorithm("ddpg", "stable_baselines3:DDPG", CONTINUOUS_ONLY),
        Algorithm("tqc", "sb3_contrib:TQC", CONTINUOUS_ONLY),
        Algorithm("crossq", "sb3_contrib:CrossQ", CONTINUOUS_ONLY),
        Algorithm("dqn", "stable_baselines3:DQN", DISCRETE_ONLY),
        Algorithm("qrdqn", "sb3_contrib:QRDQN", DISCRETE_ONLY),
    )
}


def get_algorithm(name: str) -> Algorithm:
    key = name.strip().lower()
    if key not in ALGORITHMS:
        raise ValueError(f"unknown algorithm '{name}'; choose one of: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[key]
