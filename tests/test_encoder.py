"""The sentence encoders' memory of recent texts."""

from __future__ import annotations

import numpy as np

from teams_env.encoder import HashingEncoder


def test_a_full_memory_evicts_the_least_recently_used_never_a_text_being_encoded():
    encoder = HashingEncoder(dim=16)
    encoder._capacity = 3
    reference = HashingEncoder(dim=16)
    encoder.encode(["a cat", "a dog", "a fox"])
    # "a cat" is the oldest entry; two new texts overflow the memory while it is requested again
    rows = encoder.encode(["a cat", "a hen", "an owl"])
    np.testing.assert_allclose(rows, reference.encode(["a cat", "a hen", "an owl"]))
    assert list(encoder._memory) == ["a cat", "a hen", "an owl"]


def test_repeated_texts_in_one_request_are_encoded_once():
    calls: list[list[str]] = []
    encoder = HashingEncoder(dim=8)
    encode = encoder._encode
    encoder._encode = lambda texts: calls.append(texts) or encode(texts)  # type: ignore[method-assign]
    rows = encoder.encode(["x y", "x y", "z"])
    assert calls == [["x y", "z"]]
    np.testing.assert_allclose(rows[0], rows[1])
