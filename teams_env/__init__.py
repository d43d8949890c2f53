"""teams_env: the TeaMs-RL instruction-rewriting MDP as Gymnasium environments.

Importing the package registers ``TeaMsInstruct-v0`` (continuous actions in the space of encoded
action prompts) and ``TeaMsInstructDiscrete-v0`` (``Discrete(6)``); both also work as
``gym.make("teams_env:TeaMsInstruct-v0")`` without an import. ``TeaMsInstructReplay-v0`` and
``TeaMsInstructReplayDiscrete-v0`` serve the same MDP from a recorded transition pack. Each has a
``-v1`` whose observation also says whether each step was accepted and how long the instruction
is (:data:`VERSIONS`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gymnasium.envs.registration import register, registry

from teams_env import moved_modules
from teams_env.actions import ACTION_NAMES, ACTIONS
from teams_env.env_config import ENV_DEFAULTS

__version__ = "0.1.0"

moved_modules.install()

ACTION_TYPES = ("continuous", "discrete")
VERSIONS = {"v0": False, "v1": True}
"""Env versions and whether each observes verdicts: ``-v1`` adds each step's verdict and the
instruction's length to the observation (``observe_verdicts``); ``-v0`` is the observation older
runs and policies were trained on. Both have the same dynamics (``on_failure="revert"``)."""


def env_id(
    action_type: str = "continuous",
    *,
    observe_verdicts: bool = ENV_DEFAULTS.observe_verdicts,
    replay: bool = False,
) -> str:
    """The registered id of a live (or ``replay``) env with these spaces (by default the env's
    default observation, with verdicts: ``-v1``)."""
    if action_type not in ACTION_TYPES:
        raise ValueError(f"action_type must be 'continuous' or 'discrete', got '{action_type}'")
    name = "TeaMsInstruct" + ("Replay" if replay else "") + ("Discrete" if action_type == "discrete" else "")
    return f"{name}-v{int(observe_verdicts)}"


ENV_IDS = tuple(env_id(a, observe_verdicts=v) for v in VERSIONS.values() for a in ACTION_TYPES)
REPLAY_ENV_IDS = tuple(
    env_id(a, observe_verdicts=v, replay=True) for v in VERSIONS.values() for a in ACTION_TYPES
)
"""The same MDP served from a recorded transition pack (:mod:`teams_env.replay.env`): no LLM loaded."""

for _verdicts in VERSIONS.values():
    for _action_type in ACTION_TYPES:
        for _replay, _entry in (
            (False, "teams_env.env:TeaMsInstructEnv"),
            (True, "teams_env.replay.env:TeaMsInstructReplayEnv"),
        ):
            _id = env_id(_action_type, observe_verdicts=_verdicts, replay=_replay)
            if _id not in registry:
                register(
                    id=_id,
                    entry_point=_entry,
                    kwargs={"action_type": _action_type, "observe_verdicts": _verdicts},
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
    "ACTION_TYPES",
    "ENV_IDS",
    "REPLAY_ENV_IDS",
    "VERSIONS",
    "QueryLedger",
    "TeaMsInstructEnv",
    "TeaMsInstructVecEnv",
    "env_id",
    "load_seeds",
    "make_backend",
]
