"""The continuous action space of encoded action prompts."""

from __future__ import annotations

import numpy as np
import pytest

from teams_env.action_codec import ActionCodec
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


def test_axis_signs_do_not_depend_on_the_svd(monkeypatch):
    raw = embeddings(width=12)
    codec = ActionCodec(raw, 5)
    assert codec.basis is not None
    largest = codec.basis[np.arange(5), np.argmax(np.abs(codec.basis), axis=1)]
    assert np.all(largest > 0)

    svd = np.linalg.svd

    def flipped_svd(matrix, full_matrices=True):
        u, s, vt = svd(matrix, full_matrices=full_matrices)
        signs = np.where(np.arange(vt.shape[0]) % 2 == 0, -1.0, 1.0)
        return u * signs[: u.shape[1]], s, vt * signs[:, None]

    monkeypatch.setattr(np.linalg, "svd", flipped_svd)
    other = ActionCodec(raw, 5)
    assert other.same_as(codec)
    np.testing.assert_array_equal(other.basis, codec.basis)


def test_a_saved_codec_loads_exactly(tmp_path):
    codec = ActionCodec.from_encoder(HashingEncoder(64), 5)
    codec.save(tmp_path / "codec.json")
    loaded = ActionCodec.load(tmp_path / "codec.json")
    assert loaded.same_as(codec) and loaded.dim == 5 and loaded.n_actions == 6 and loaded.basis is None
    vectors = np.random.default_rng(3).normal(size=(200, 5))
    assert [loaded.decode(v) for v in vectors] == [codec.decode(v) for v in vectors]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "invalid JSON"),
        ("[]", "not an action codec"),
        ('{"format": "teams-rl action codec", "version": 2}', "version 2"),
        (
            '{"format": "teams-rl action codec", "version": 1, "actions": ["a"], "prototypes": []}',
            "saved for the actions",
        ),
    ],
)
def test_a_damaged_codec_file_is_one_error_naming_it(tmp_path, content, message):
    file = tmp_path / "codec.json"
    file.write_text(content)
    with pytest.raises(ValueError, match=message) as error:
        ActionCodec.load(file)
    assert str(file) in str(error.value) and "\n" not in str(error.value)
