"""The paper's continuous action space: each rewrite action's prompt is encoded by a sentence
encoder, and a policy's action vector decodes to the action whose embedding is nearest by cosine.

The action embeddings are centred (their shared "rewrite this instruction" component says nothing
about which action is meant) and expressed in their principal axes, so the first ``dim``
coordinates carry the most contrast between actions. Six centred points span five dimensions:
coordinates past the fifth change no decision, and ``dim`` equal to the encoder's size is the
full embedding space, rotated.
"""

from __future__ import annotations

import numpy as np

from teams_env.actions import ACTIONS
from teams_env.encoder import SentenceEncoder


class ActionCodec:
    def __init__(self, action_embeddings: np.ndarray, dim: int) -> None:
        n_actions, width = action_embeddings.shape
        if not 2 <= dim <= width:
            raise ValueError(f"action_dim must be between 2 and {width} (the encoder's size), got {dim}")
        centred = action_embeddings - action_embeddings.mean(axis=0, keepdims=True)
        _, _, axes = np.linalg.svd(centred, full_matrices=True)
        self.basis = axes[:dim].astype(np.float64)
        projected = centred @ self.basis.T
        norms = np.linalg.norm(projected, axis=1, keepdims=True)
        if np.any(norms < 1e-9):
            raise ValueError("two action prompts encode to the same point; the actions cannot be told apart")
        self.prototypes = (projected / norms).astype(np.float32)
        """One unit vector per action in the policy's space: decoding it gives that action."""
        self.dim = dim
        self.n_actions = n_actions

    @classmethod
    def from_encoder(cls, encoder: SentenceEncoder, dim: int) -> ActionCodec:
        return cls(encoder.encode([action.method for action in ACTIONS]).astype(np.float64), dim)

    def decode(self, vector: np.ndarray) -> int:
        """The action whose prototype has the largest cosine with ``vector`` (ties: lowest index)."""
        vector = np.asarray(vector, dtype=np.float64).reshape(-1)
        if vector.shape[0] != self.dim:
            raise ValueError(f"action vector has {vector.shape[0]} values, expected {self.dim}")
        if not np.all(np.isfinite(vector)):
            raise ValueError("action vector contains NaN or infinity")
        return int(np.argmax(self.prototypes @ vector))

    def encode(self, action: int) -> np.ndarray:
        """A vector that decodes to ``action`` (inside the Box [-1, 1])."""
        return self.prototypes[action].copy()
