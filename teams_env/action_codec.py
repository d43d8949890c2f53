"""The paper's continuous action space: each rewrite action's prompt is encoded by a sentence
encoder, and a policy's action vector decodes to the action whose embedding is nearest by cosine.

The action embeddings are centred (their shared "rewrite this instruction" component says nothing
about which action is meant) and expressed in their principal axes, so the first ``dim``
coordinates carry the most contrast between actions. Six centred points span five dimensions:
coordinates past the fifth change no decision, and ``dim`` equal to the encoder's size is the
full embedding space, rotated.

An SVD's axes have arbitrary signs (they can differ between machines and library versions), so each
axis is turned to make its largest-magnitude component positive. A trained policy is still tied to
its codec: training saves the prototypes with the run (:meth:`ActionCodec.save`), and loading the
run decodes with them (:mod:`teams_rl.agents.policy`), so a checkpoint decodes the same everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from teams_env.actions import ACTION_NAMES, ACTIONS
from teams_env.encoder import SentenceEncoder
from teams_env.json_files import read_json_object

CODEC_FORMAT = "teams-rl action codec"
CODEC_VERSION = 1


def fix_signs(axes: np.ndarray) -> np.ndarray:
    """``axes`` (one per row) with each row's largest-magnitude component made positive (ties: the
    first such component), so the same subspace gives the same axes whatever signs the SVD chose."""
    largest = axes[np.arange(axes.shape[0]), np.argmax(np.abs(axes), axis=1)]
    return axes * np.where(largest < 0, -1.0, 1.0)[:, None]


class ActionCodec:
    def __init__(self, action_embeddings: np.ndarray, dim: int) -> None:
        n_actions, width = action_embeddings.shape
        if not 2 <= dim <= width:
            raise ValueError(f"action_dim must be between 2 and {width} (the encoder's size), got {dim}")
        centred = action_embeddings - action_embeddings.mean(axis=0, keepdims=True)
        _, _, axes = np.linalg.svd(centred, full_matrices=True)
        self.basis: np.ndarray | None = fix_signs(axes[:dim]).astype(np.float64)
        """Rows: the axes from the embedding space into the policy's (None for a codec loaded from
        its prototypes, which is all decoding needs)."""
        projected = centred @ self.basis.T
        norms = np.linalg.norm(projected, axis=1, keepdims=True)
        if np.any(norms < 1e-9):
            raise ValueError("two action prompts encode to the same point; the actions cannot be told apart")
        self.prototypes = (projected / norms).astype(np.float32)
        """One unit vector per action in the policy's space: decoding it gives that action."""
        self.dim = dim
        self.n_actions = n_actions

    @classmethod
    def from_prototypes(cls, prototypes: np.ndarray) -> ActionCodec:
        """A codec that decodes with these prototypes (one unit vector per action, in order)."""
        prototypes = np.asarray(prototypes, dtype=np.float32)
        if prototypes.ndim != 2 or prototypes.shape[0] != len(ACTIONS) or prototypes.shape[1] < 2:
            raise ValueError(
                f"expected {len(ACTIONS)} prototypes of at least 2 values each, got shape {prototypes.shape}"
            )
        if not np.all(np.isfinite(prototypes)):
            raise ValueError("prototypes contain NaN or infinity")
        codec = cls.__new__(cls)
        codec.basis = None
        codec.prototypes = prototypes
        codec.n_actions, codec.dim = prototypes.shape
        return codec

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

    def same_as(self, other: ActionCodec) -> bool:
        """Whether both decode every vector to the same action (identical prototypes)."""
        return self.prototypes.shape == other.prototypes.shape and np.array_equal(
            self.prototypes, other.prototypes
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CODEC_FORMAT,
            "version": CODEC_VERSION,
            "actions": list(ACTION_NAMES),
            "dim": self.dim,
            # float32 -> float is exact, and JSON keeps every digit of a float: loading is exact.
            "prototypes": [[float(value) for value in row] for row in self.prototypes],
        }

    def save(self, path: str | Path) -> None:
        """Write the prototypes as JSON (small: six rows of ``dim`` numbers)."""
        Path(path).write_text(json.dumps(self.to_dict()) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> ActionCodec:
        """A codec saved by :meth:`save`; anything else is a one-line error naming the file."""
        file = Path(path)
        data = read_json_object(file, "an action codec", format=CODEC_FORMAT, version=CODEC_VERSION)
        if data.get("actions") != list(ACTION_NAMES):
            raise ValueError(
                f"{file}: saved for the actions {data.get('actions')}, but this version has "
                f"{list(ACTION_NAMES)}; the policy's actions would be misread"
            )
        try:
            return cls.from_prototypes(np.asarray(data.get("prototypes"), dtype=np.float32))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{file}: unusable prototypes ({error})") from error
