"""teams_env: the TeaMs-RL instruction-rewriting MDP as Gymnasium environments.

Importing the package registers ``TeaMsInstruct-v0`` (continuous actions in the space of encoded
action prompts) and ``TeaMsInstructDiscrete-v0`` (``Discrete(6)``); both also work as
``gym.make("teams_env:TeaMsInstruct-v0")`` without an import. ``TeaMsInstructReplay-v0`` and
``TeaMsInstructReplayDiscrete-v0`` serve the same MDP from a recorded transition pack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gymnasium.envs.registration import register, registry

from teams_env import moved_modules
from teams_env.actions import ACTION_NAMES, ACTIONS

__version__ = "0.1.0"

moved_modules.install()

ENV_IDS = ("TeaMsInstruct-v0", "TeaMsInstructDiscrete-v0")

for _env_id, _action_type in zip(ENV_IDS, ("continuous", "discrete")):
    if _env_id not in registry:
        register(
            id=_env_id, entry_point="teams_env.env:TeaMsInstructEnv", kwargs={"action_type": _action_type}
        )

REPLAY_ENV_IDS = ("TeaMsInstructReplay-v0", "TeaMsInstructReplayDiscrete-v0")
"""The same MDP served from a recorded transition pack (:mod:`teams_env.replay.env`): no LLM loaded."""

for _env_id, _action_type in zip(REPLAY_ENV_IDS, ("continuous", "discrete")):
    if _env_id not in registry:
        register(
            id=_env_id,
            entry_point="teams_env.replay.env:TeaMsInstructReplayEnv",
            kwargs={"action_type": _action_type},
        )

if TYPE_CHECKING:
    from teams_env.env import TeaMsInstructEnv
    from teams_env.vector import TeaMsInstructVecEnv

# The classes below pull in numpy/SB3; importing the package for registration stays cheap.
_LAZY = {
    "TeaMsInstructEnv": "teams_env.env",
    "TeaMsInstructVecEnv": "teams_env.vector",
    "QueryLedger": "teams_env.llm.accounting",
    "load_seeds": "teams_env.seeds",
    "make_backend": "teams_env.llm.registry",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'teams_env' has no attribute '{name}'")


__all__ = [
    "ACTIONS",
    "ACTION_NAMES",
    "ENV_IDS",
    "REPLAY_ENV_IDS",
    "QueryLedger",
    "TeaMsInstructEnv",
    "TeaMsInstructVecEnv",
    "load_seeds",
    "make_backend",
]
