"""The simple baseline instructors, with SB3's ``predict`` interface, for either environment:
``uniform``, ``random-continuous``, ``fixed:NAME,...`` and ``reference`` (see
:mod:`teams_rl.agents.baselines.registry` for what each does), and :class:`BaselineAgent`, the
base class the oracles and the text baselines share.

The step within the episode is carried in ``state`` (one counter per environment, reset where
``episode_start`` is true), as SB3 does for recurrent policies: pass the returned state back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from teams_env.action_codec import ActionCodec
from teams_env.actions import ACTION_NAMES

REFERENCE_SEQUENCE = (
    "add_constraints",
    "breadth",
    "add_constraints",
    "add_constraints",
    "breadth",
    "add_constraints",
)


def env_codec(env: gym.Env | VecEnv) -> ActionCodec | None:
    """The environment's action codec (None for the discrete environment)."""
    if isinstance(env, VecEnv):
        return env.get_attr("codec", [0])[0]
    return getattr(env.unwrapped, "codec", None)


class BaselineAgent:
    """Batches like an SB3 model: observations of shape (n_envs, obs_dim) give n_envs actions."""

    def __init__(self, env: gym.Env | VecEnv, seed: int = 0) -> None:
        self.action_space = env.action_space
        self.codec = env_codec(env) if isinstance(self.action_space, spaces.Box) else None
        self.rng = np.random.default_rng(seed)

    def set_random_seed(self, seed: int) -> None:
        """Restart the random draws (as SB3 models' ``set_random_seed``), e.g. per batch of episodes."""
        self.rng = np.random.default_rng(seed)

    def _actions(self, steps: np.ndarray) -> np.ndarray:
        """Environment actions for sub-environments at these steps of their episodes (the baselines
        that read the observation override :meth:`_actions_for` instead)."""
        raise NotImplementedError

    def _from_indices(self, indices: np.ndarray) -> np.ndarray:
        if self.codec is None:
            return indices.astype(np.int64)
        return np.stack([self.codec.encode(int(index)) for index in indices])

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        observation = np.asarray(observation)
        vectorized = observation.ndim == 2
        n_envs = observation.shape[0] if vectorized else 1
        steps = np.zeros(n_envs, np.int64) if state is None else np.array(state, np.int64).reshape(n_envs)
        if episode_start is not None:
            steps[np.asarray(episode_start, bool).reshape(n_envs)] = 0
        actions = self._actions_for(steps, observation.reshape(n_envs, -1), deterministic)
        return (actions if vectorized else actions[0]), steps + 1

    def _actions_for(self, steps: np.ndarray, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        """Environment actions given each sub-environment's step and observation; the baselines that
        read only the step override :meth:`_actions`."""
        return self._actions(steps)


class UniformRandomAgent(BaselineAgent):
    def _actions(self, steps: np.ndarray) -> np.ndarray:
        return self._from_indices(self.rng.integers(len(ACTION_NAMES), size=len(steps)))


class RandomContinuousAgent(BaselineAgent):
    def __init__(self, env: gym.Env | VecEnv, seed: int = 0) -> None:
        super().__init__(env, seed)
        if not isinstance(self.action_space, spaces.Box):
            raise ValueError("random-continuous needs the continuous environment (action_type continuous)")
        self.low, self.high = self.action_space.low, self.action_space.high

    def _actions(self, steps: np.ndarray) -> np.ndarray:
        return self.rng.uniform(self.low, self.high, size=(len(steps), *self.low.shape)).astype(np.float32)


class FixedSequenceAgent(BaselineAgent):
    def __init__(self, env: gym.Env | VecEnv, actions: Sequence[str], seed: int = 0) -> None:
        super().__init__(env, seed)
        unknown = [name for name in actions if name not in ACTION_NAMES]
        if unknown or not actions:
            raise ValueError(
                f"fixed action sequence needs names from: {', '.join(ACTION_NAMES)}; got {', '.join(actions) or 'none'}"
            )
        self.sequence = np.array([ACTION_NAMES.index(name) for name in actions])

    def _actions(self, steps: np.ndarray) -> np.ndarray:
        return self._from_indices(self.sequence[steps % len(self.sequence)])
