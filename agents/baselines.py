"""Baseline instructors with SB3's ``predict`` interface, for either environment.

- ``uniform``: each rewrite drawn uniformly from the six actions, Evol-Instruct's sampling.
- ``random-continuous``: a uniform sample of the Box action space, decoded to the nearest action
  prompt like any policy output (so the actions are *not* equally likely: each gets the share of
  the Box closest to its prototype). Continuous environment only.
- ``fixed:NAME,NAME,...``: the same sequence of actions every episode (step t takes NAME number
  t, cycling when the episode is longer than the list).
- ``reference``: the authors' generation pattern. Their code (``generate_data_alpaca.py``) forces
  breadth at steps 1 and 4 (counting from 0) and turns any other breadth into add-constraints,
  after biasing its policy towards add-constraints (+0.7 on that logit); as a baseline that is
  add_constraints, breadth, add_constraints, add_constraints, breadth, add_constraints.
- ``optimal`` and ``best-fixed``: the exact optimum of the replay env's pack and its best fixed
  action sequence, by dynamic programming (:mod:`agents.oracles`). Replay env only.
- ``supervised`` and ``nearest-seed``: what reading the instruction can buy, learnt from the
  pack's ``train`` seeds (:mod:`agents.text_baselines`): a softmax regression from the
  observation to the optimal action, and the optimal policy of the most similar training seed.
  Replay env only.

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

from teams_env.action_space import ActionCodec
from teams_env.actions import ACTION_NAMES

REFERENCE_SEQUENCE = (
    "add_constraints",
    "breadth",
    "add_constraints",
    "add_constraints",
    "breadth",
    "add_constraints",
)
BASELINE_NAMES = (
    "uniform",
    "random-continuous",
    "reference",
    "fixed:NAME,NAME,...",
    "optimal",
    "best-fixed",
    "supervised",
    "nearest-seed",
)
NAMED_BASELINES = tuple(name for name in BASELINE_NAMES if ":" not in name)


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


def is_baseline(spec: str) -> bool:
    return spec in NAMED_BASELINES or spec.startswith("fixed:")


def make_baseline(spec: str, env: gym.Env | VecEnv, seed: int = 0) -> BaselineAgent | None:
    """The baseline a spec names (see the module docstring), or None if it names none."""
    if not is_baseline(spec):
        return None
    if spec == "uniform":
        return UniformRandomAgent(env, seed)
    if spec == "random-continuous":
        return RandomContinuousAgent(env, seed)
    if spec == "reference":
        return FixedSequenceAgent(env, REFERENCE_SEQUENCE, seed)
    if spec in ("optimal", "best-fixed"):
        from agents.oracles import BestFixedAgent, OptimalAgent

        return OptimalAgent(env, seed) if spec == "optimal" else BestFixedAgent(env, seed)
    if spec in ("supervised", "nearest-seed"):
        from agents.text_baselines import NearestSeedAgent, SupervisedAgent

        return SupervisedAgent(env, seed) if spec == "supervised" else NearestSeedAgent(env, seed)
    names = [name.strip() for name in spec.removeprefix("fixed:").split(",") if name.strip()]
    return FixedSequenceAgent(env, names, seed)
