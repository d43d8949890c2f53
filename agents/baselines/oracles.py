"""The ceilings of the replay env, from dynamic programming over its pack (:mod:`teams_env.replay.optimum`).

- ``optimal``: at every step the action of an optimal policy for the node the env is in, so its
  return is the best achievable on each seed. It reads the env's state (``node_key``), not the
  observation: an oracle, only for :class:`~teams_env.replay.env.TeaMsInstructReplayEnv`.
- ``best-fixed``: the one action sequence with the best mean return over the env's seeds, the
  ceiling of a text-blind policy (the authors' last-action observation sees no more than the
  step). Computed on the env's own seeds, so on held-out seeds it is an oracle too.

Both maximise the undiscounted sum of an episode's rewards, with the env's reward option.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from teams_env.actions import ACTION_NAMES
from teams_env.replay.env import TeaMsInstructReplayEnv
from teams_env.replay.optimum import Optimum, solve
from teams_rl.agents.baselines.simple import BaselineAgent


def replay_env(env: gym.Env | VecEnv, agent: str) -> TeaMsInstructReplayEnv:
    """The (first) replay env behind ``env``; any other env is a one-line error."""
    inner = env.get_attr("unwrapped", [0])[0] if isinstance(env, VecEnv) else env.unwrapped
    if not isinstance(inner, TeaMsInstructReplayEnv):
        raise ValueError(
            f"the {agent} agent needs the replay env (TeaMsInstructReplay-v0 or its Discrete twin), "
            f"got {type(inner).__name__}"
        )
    return inner


def env_node_keys(env: gym.Env | VecEnv) -> list[Any]:
    """The pack node (seed id, actions so far) each (sub-)environment of ``env`` is in."""
    if isinstance(env, VecEnv):
        return list(env.get_attr("node_key"))
    return [env.unwrapped.node_key]  # type: ignore[attr-defined]


def env_optimum(env: TeaMsInstructReplayEnv, gamma: float = 1.0) -> Optimum:
    """The exact optimum of ``env``'s seeds, horizon and reward."""
    return solve(env.transition_reward, env.seed_ids, len(ACTION_NAMES), env.max_steps, gamma)


class OptimalAgent(BaselineAgent):
    def __init__(self, env: gym.Env | VecEnv, seed: int = 0) -> None:
        super().__init__(env, seed)
        self.env = env
        self.optimum = env_optimum(replay_env(env, "optimal"))

    def _actions(self, steps: np.ndarray) -> np.ndarray:
        keys = env_node_keys(self.env)
        if len(keys) != len(steps):
            raise ValueError(f"optimal agent: {len(steps)} observations for {len(keys)} environments")
        return self._from_indices(np.array([self.optimum.best_action[key] for key in keys]))


class BestFixedAgent(BaselineAgent):
    def __init__(self, env: gym.Env | VecEnv, seed: int = 0) -> None:
        super().__init__(env, seed)
        self.optimum = env_optimum(replay_env(env, "best-fixed"))
        self.sequence = np.array(self.optimum.best_fixed)

    @property
    def action_names(self) -> list[str]:
        return [ACTION_NAMES[index] for index in self.sequence]

    def _actions(self, steps: np.ndarray) -> np.ndarray:
        return self._from_indices(self.sequence[steps % len(self.sequence)])
