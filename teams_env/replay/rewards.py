"""Rewards of the replay env, computed from a pack's texts (no re-recording to compare them).

- ``"reviewer"``: the live env's reward as recorded (the paper's: 1 when the reviewer says "Not
  Equal" and the rewrite is valid, minus the leak penalty).
- ``"novelty"``: the cosine distance, in the env's sentence-encoder space, from the rewrite to the
  nearest text earlier in the episode (the starting instruction and every earlier rewrite): 0 for
  a rewrite that repeats one, about 1 for one unrelated to all of them.
- ``"reviewer*novelty"``: their product: only rewrites the reviewer accepts earn, by how new they are.
- ``"kept-vendi-gain"``: a set-level reward, the way a dataset is scored: a rewrite a dataset would
  keep (the reviewer rewarded it, valid, no leaked prompt words: the benchmark's "kept") earns what
  it adds to the Vendi score (the effective number of distinct items) of the episode's kept set,
  the starting instruction and the rewrites kept before it; a gain below 0 (an accepted
  near-duplicate of a kept text) counts as 0. About 1 for a rewrite unrelated to all of them, 0 for
  a copy of one; every other step earns 0.
- any callable ``reward_fn(transition, episode) -> float``, e.g. a rubric of your own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from teams_env.encoder import SentenceEncoder
from teams_env.metrics import vendi_score
from teams_env.reward.elimination import leaked_phrase

if TYPE_CHECKING:
    from teams_env.replay.embeddings import EmbeddingTable

REWARD_NAMES = ("reviewer", "novelty", "reviewer*novelty", "kept-vendi-gain")


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
    table: EmbeddingTable | None = None
    """The pack's stored embeddings (every text of a pack), when the replay env has them."""

    def texts(self) -> list[str]:
        """The starting instruction, then each earlier rewrite."""
        return [self.start, *(t.instruction for t in self.transitions)]

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-norm float32 rows for ``texts``: the pack's stored rows (float16, renormalised) when
        it holds them all, else the encoder's."""
        if self.table is None or not all(text in self.table for text in texts):
            return self.encoder.encode(texts)
        rows = np.stack([self.table.vector(text) for text in texts]).astype(np.float32)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


RewardFn = Callable[[Transition, Episode], float]


def reviewer_reward(transition: Transition, episode: Episode) -> float:
    return transition.reviewer_reward


def novelty_reward(transition: Transition, episode: Episode) -> float:
    vectors = episode.embed([*episode.texts(), transition.instruction])  # one source for all rows
    return float(max(0.0, 1.0 - float(np.max(vectors[:-1] @ vectors[-1]))))


def reviewer_times_novelty(transition: Transition, episode: Episode) -> float:
    return transition.reviewer_reward * novelty_reward(transition, episode)


def _kept(transition: Transition) -> bool:
    """As the benchmark keeps a rewrite: rewarded (Not Equal and valid), no leaked prompt words."""
    return transition.reviewer_reward > 0 and not leaked_phrase(transition.instruction)


def kept_vendi_gain(transition: Transition, episode: Episode) -> float:
    if not _kept(transition):
        return 0.0
    kept = [episode.start, *(t.instruction for t in episode.transitions if _kept(t))]
    vectors = episode.embed([*kept, transition.instruction])
    return max(0.0, vendi_score(vectors) - vendi_score(vectors[:-1]))


_BUILT_IN: dict[str, RewardFn] = {
    "reviewer": reviewer_reward,
    "novelty": novelty_reward,
    "reviewer*novelty": reviewer_times_novelty,
    "kept-vendi-gain": kept_vendi_gain,
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
