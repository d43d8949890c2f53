"""The continuous action space of encoded action prompts."""

from __future__ import annotations

import numpy as np
import pytest

from teams_env.action_space import ActionCodec
from teams_env.encoder import HashingEncoder


def embeddings(n: int = 6, width: int = 16, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, width))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("dim", [2, 5, 8, 16])
def test_each_prototype_decodes_to_its_action(dim):
    codec = ActionCodec(embeddings(), dim)
    assert [codec.decode(codec.encode(a)) for a in range(6)] == list(range(6))
    assert codec.prototypes.shape == (6, dim)
    assert np.all(np.abs(codec.prototypes) <= 1.0)


def test_full_dimension_decodes_like_cosine_on_centred_embeddings():
    raw = embeddings(width=12)
    codec = ActionCodec(raw, 12)
    centred = raw - raw.mean(axis=0)
    rng = np.random.default_rng(1)
    for _ in range(50):
        direction = rng.normal(size=12)
        cosine = (centred @ direction) / np.linalg.norm(centred, axis=1)
        assert codec.decode(codec.basis @ direction) == int(np.argmax(cosine))


def test_scale_does_not_change_the_decision():
    codec = ActionCodec(embeddings(), 5)
    vector = np.random.default_rng(2).normal(size=5)
    assert codec.decode(vector) == codec.decode(vector * 0.01) == codec.decode(vector * 100)


def test_from_encoder_uses_the_action_prompts():
    codec = ActionCodec.from_encoder(HashingEncoder(64), 4)
    assert codec.n_actions == 6 and codec.dim == 4


@pytest.mark.parametrize(
    ("vector", "message"),
    [(np.zeros(3), "has 3 values, expected 5"), (np.array([np.nan, 0, 0, 0, 0]), "NaN")],
)
def test_bad_vectors(vector, message):
    with pytest.raises(ValueError, match=message):
        ActionCodec(embeddings(), 5).decode(vector)


def test_bad_construction():
    with pytest.raises(ValueError, match="between 2 and 16"):
        ActionCodec(embeddings(), 1)
    same = np.tile(embeddings(1), (6, 1))
    with pytest.raises(ValueError, match="cannot be told apart"):
        ActionCodec(same, 4)
