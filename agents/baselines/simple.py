"""The simple baseline instructors, with SB3's ``predict`` interface, for either environment:
``uniform``, ``random-continuous``, ``fixed:NAME,...`` and ``reference`` (see
:mod:`teams_rl.agents.baselines.registry` for what each does), and :class:`BaselineAgent`, the
base class the oracles and the text baselines share.

The step within the episode is carried in ``state`` (one counter per environment, reset where
``episode_start`` is true), as SB3 does for recurrent policies: pass the returned state back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


def action_indices(names: Sequence[str], what: str) -> list[int]:
    """The indices of action ``names``; an empty list or an unknown name is a one-line error."""
    unknown = [name for name in names if name not in ACTION_NAMES]
    if unknown or not names:
        raise ValueError(
            f"{what} needs names from: {', '.join(ACTION_NAMES)}; got {', '.join(names) or 'none'}"
        )
    return [ACTION_NAMES.index(name) for name in names]


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
        self.sequence = np.array(action_indices(actions, "fixed action sequence"))

    def _actions(self, steps: np.ndarray) -> np.ndarray:
        return self._from_indices(self.sequence[steps % len(self.sequence)])


def _env_attribute(env: gym.Env | VecEnv, name: str) -> Any:
    if isinstance(env, VecEnv):
        return env.get_attr(name, [0])[0]
    return getattr(env.unwrapped, name)


@dataclass(frozen=True)
class VerdictReader:
    """Reads from an observation with verdicts (``observe_verdicts=True``) the actions that failed
    from the current instruction: the text observation holds every step's verdict, the last-action
    one only the last."""

    last_action_only: bool
    max_steps: int

    @classmethod
    def of(cls, env: gym.Env | VecEnv) -> VerdictReader | None:
        """The reader for ``env``'s observation, or None when it carries no verdicts."""
        if not _env_attribute(env, "observe_verdicts"):
            return None
        return cls(
            _env_attribute(env, "observation_mode") == "last_action", int(_env_attribute(env, "max_steps"))
        )

    def failed(self, observation: np.ndarray) -> set[int]:
        """The actions that failed since the last accepted step (each a certain 0 if retried)."""
        width = len(ACTION_NAMES) + 1
        if self.last_action_only:
            rows = observation[None, :width]
        else:
            start = len(observation) - 2 - width * self.max_steps  # after the embedding
            rows = observation[start : start + width * self.max_steps].reshape(self.max_steps, width)
        failed: set[int] = set()
        for row in rows:
            if not row[: len(ACTION_NAMES)].any():  # a step not taken yet
                break
            action = int(np.argmax(row[: len(ACTION_NAMES)]))
            failed = set() if row[-1] > 0.5 else failed | {action}
        return failed


class RetryAwareAgent(BaselineAgent):
    """A fixed priority order of actions that never retries a failure: at each step, the first
    action of ``actions`` that has not failed from the current instruction. After a failed rewrite
    the env goes on from the instruction before it (``on_failure="revert"``) and the same
    (instruction, action) gives the same rewrite, so a retry is a certain 0; an accepted rewrite is
    a new instruction, from which every action may be tried again. It reads the verdicts from the
    observation, so the env must observe them (:class:`VerdictReader`)."""

    def __init__(self, env: gym.Env | VecEnv, actions: Sequence[str], seed: int = 0) -> None:
        super().__init__(env, seed)
        self.priority = list(dict.fromkeys(action_indices(actions, "retry-aware priority order")))
        verdicts = VerdictReader.of(env)
        if verdicts is None:
            raise ValueError("retry-aware reads each step's verdict: make the env with observe_verdicts=True")
        self.verdicts = verdicts

    def _actions_for(self, steps: np.ndarray, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        chosen = []
        for observation in observations:
            failed = self.verdicts.failed(observation)
            chosen.append(next((a for a in self.priority if a not in failed), self.priority[0]))
        return self._from_indices(np.array(chosen))
