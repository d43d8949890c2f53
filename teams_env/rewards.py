"""Rewards of the replay env, computed from a pack's texts (no re-recording to compare them).

- ``"reviewer"``: the live env's reward as recorded (the paper's: 1 when the reviewer says "Not
  Equal" and the rewrite is valid, minus the leak penalty).
- ``"novelty"``: the cosine distance, in the env's sentence-encoder space, from the rewrite to the
  nearest text earlier in the episode (the starting instruction and every earlier rewrite): 0 for
  a rewrite that repeats one, about 1 for one unrelated to all of them.
- ``"reviewer*novelty"``: their product: only rewrites the reviewer accepts earn, by how new they are.
- any callable ``reward_fn(transition, episode) -> float``, e.g. a rubric of your own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from teams_env.encoder import SentenceEncoder

REWARD_NAMES = ("reviewer", "novelty", "reviewer*novelty")


@dataclass(frozen=True)
class Transition:
    """One step of an episode, as the replay env serves it."""

    seed_id: str
    step: int
    """1 for the first rewrite of the episode."""
    action: int
    previous_instruction: str
    instruction: str
    """The rewrite."""
    state_instruction: str
    """What the next step rewrites (the rewrite, or the instruction before it after a reverted failure)."""
    reviewer_reward: float
    """The live env's reward for this step, as recorded."""
    info: Mapping[str, Any] = field(default_factory=dict)
    """The step's recorded ``info`` fields (``verdict``, ``p_not_equal``, ``valid``, ...)."""


@dataclass(frozen=True)
class Episode:
    """What came before a transition: the starting instruction and the earlier steps."""

    seed_id: str
    start: str
    transitions: tuple[Transition, ...]
    encoder: SentenceEncoder

    def texts(self) -> list[str]:
        """The starting instruction, then each earlier rewrite."""
        return [self.start, *(t.instruction for t in self.transitions)]


RewardFn = Callable[[Transition, Episode], float]


def reviewer_reward(transition: Transition, episode: Episode) -> float:
    return transition.reviewer_reward


def novelty_reward(transition: Transition, episode: Episode) -> float:
    earlier = episode.encoder.encode(episode.texts())
    rewrite = episode.encoder.encode([transition.instruction])[0]
    return float(max(0.0, 1.0 - float(np.max(earlier @ rewrite))))


def reviewer_times_novelty(transition: Transition, episode: Episode) -> float:
    return transition.reviewer_reward * novelty_reward(transition, episode)


_BUILT_IN: dict[str, RewardFn] = {
    "reviewer": reviewer_reward,
    "novelty": novelty_reward,
    "reviewer*novelty": reviewer_times_novelty,
}


def resolve_reward(reward: str, reward_fn: RewardFn | None) -> tuple[RewardFn, bool]:
    """The reward function and whether it is one of ours (pure, so its values may be memoised)."""
    if reward_fn is not None:
        if not callable(reward_fn):
            raise TypeError(f"reward_fn must be callable(transition, episode) -> float, got {reward_fn!r}")
        if reward != "reviewer":
            raise ValueError(f"give reward='{reward}' or reward_fn, not both")
        return reward_fn, False
    if reward not in _BUILT_IN:
        raise ValueError(f"unknown reward '{reward}'; choose {', '.join(REWARD_NAMES)} or pass reward_fn")
    return _BUILT_IN[reward], True
