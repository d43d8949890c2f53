"""Diversity metrics on sets with known answers, and ROUGE-L against the reference implementation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from teams_env import metrics
from teams_env.encoder import shared_encoder
from teams_env.metrics import (
    common_subsample_size,
    compared_diversity,
    distinct_n,
    diversity_summary,
    length_stats,
    mean_nearest_neighbour_distance,
    mean_pairwise_cosine_distance,
    novelty_filter,
    rouge_l,
    size_controlled_vendi,
    subsampled_vendi,
    vendi_score,
)


def brute_force_lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, j in itertools.product(range(len(a)), range(len(b))):
        table[i + 1][j + 1] = table[i][j] + 1 if a[i] == b[j] else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


@pytest.mark.parametrize("n", [1, 5, 40])
def test_vendi_of_identical_items_is_one(n: int) -> None:
    assert vendi_score(np.tile([[0.3, -1.2, 2.0]], (n, 1))) == pytest.approx(1.0)


@pytest.mark.parametrize("n", [2, 5, 16])
def test_vendi_of_orthogonal_items_is_their_count(n: int) -> None:
    assert vendi_score(np.eye(n) * 3.0) == pytest.approx(n)  # scale does not matter: rows are normalised


def test_vendi_counts_groups_of_duplicates() -> None:
    # 3 orthogonal directions, each repeated 4 times: 12 items in 3 dimensions (the n > d path)
    embeddings = np.repeat(np.eye(3), 4, axis=0)
    assert vendi_score(embeddings) == pytest.approx(3.0)
    # unequal groups are fewer effective items than groups
    assert 1.0 < vendi_score(np.vstack([np.repeat(np.eye(2)[:1], 5, axis=0), np.eye(2)[1:]])) < 2.0


def vendi_by_definition(embeddings: np.ndarray) -> float:
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    eigenvalues = np.linalg.eigvalsh(unit @ unit.T / len(unit))
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-np.sum(eigenvalues * np.log(eigenvalues))))


@pytest.mark.parametrize("shape", [(6, 10), (10, 4)])
def test_vendi_matches_its_definition_whichever_matrix_is_decomposed(shape: tuple[int, int]) -> None:
    embeddings = np.random.default_rng(0).normal(size=shape)  # n < d, then n > d
    assert vendi_score(embeddings) == pytest.approx(vendi_by_definition(embeddings))


def test_cosine_distances_of_known_sets() -> None:
    assert mean_pairwise_cosine_distance(np.ones((4, 3))) == pytest.approx(0.0)
    assert mean_pairwise_cosine_distance(np.eye(5)) == pytest.approx(1.0)
    assert mean_pairwise_cosine_distance(np.array([[1.0, 0.0], [-2.0, 0.0]])) == pytest.approx(2.0)
    assert mean_nearest_neighbour_distance(np.eye(5)) == pytest.approx(1.0)
    # every item has a duplicate: nearest neighbours are at distance 0 though the pairs are far apart
    duplicated = np.repeat(np.eye(3), 2, axis=0)
    assert mean_nearest_neighbour_distance(duplicated) == pytest.approx(0.0)
    assert mean_pairwise_cosine_distance(duplicated) == pytest.approx(12 / 15)


def test_cosine_distances_match_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_NEIGHBOUR_BLOCK", 4)  # several blocks
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(11, 7))
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    distance = 1 - unit @ unit.T
    pairs = [distance[i, j] for i, j in itertools.combinations(range(11), 2)]
    nearest = [min(distance[i, j] for j in range(11) if j != i) for i in range(11)]
    assert mean_pairwise_cosine_distance(embeddings) == pytest.approx(np.mean(pairs))
    assert mean_nearest_neighbour_distance(embeddings) == pytest.approx(np.mean(nearest))


@pytest.mark.parametrize(
    "call",
    [
        lambda: vendi_score(np.zeros((0, 3))),
        lambda: vendi_score(np.array([[1.0, 0.0], [0.0, 0.0]])),
        lambda: mean_pairwise_cosine_distance(np.ones((1, 3))),
        lambda: mean_nearest_neighbour_distance(np.ones((1, 3))),
        lambda: distinct_n(["a"], 0),
    ],
)
def test_undefined_inputs_are_errors(call) -> None:
    with pytest.raises(ValueError):
        call()


def test_distinct_n_counts_unique_word_ngrams_over_the_set() -> None:
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["The cat.", "the CAT"], 1) == pytest.approx(2 / 4)  # lowercased words, no punctuation
    assert distinct_n(["x y", "y z"], 2) == 1.0  # "y y" never occurs: n-grams do not cross texts
    assert distinct_n(["one", "two"], 2) == 0.0  # no bigram at all
    assert distinct_n(["same words here"] * 5, 1) == pytest.approx(3 / 15)


def test_length_stats_in_words() -> None:
    stats = length_stats(["one", "one two three", "a b c d e"])
    assert (stats.count, stats.min, stats.median, stats.max) == (3, 1, 3.0, 5)
    assert stats.mean == pytest.approx(3.0) and stats.std == pytest.approx(np.std([1, 3, 5]))
    assert length_stats([]).count == 0


def test_lcs_matches_dynamic_programming() -> None:
    rng = np.random.default_rng(2)
    alphabet = list("abcde")
    for _ in range(200):
        a = list(rng.choice(alphabet, size=int(rng.integers(0, 15))))
        b = list(rng.choice(alphabet, size=int(rng.integers(0, 15))))
        assert metrics._lcs_length(a, b) == brute_force_lcs(a, b)


def test_rouge_l_matches_the_rouge_score_package() -> None:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pairs = [
        ("the cat sat on the mat", "the cat lay on the mat"),
        ("Write a poem about the sea.", "Write a short poem about the deep blue sea, in four lines."),
        ("List three fruits", "Name three vegetables that grow in winter"),
        ("a b c d e f", "f e d c b a"),
        ("completely different", "nothing shared here"),
    ]
    for a, b in pairs:
        assert rouge_l(a, b) == pytest.approx(scorer.score(a, b)["rougeL"].fmeasure)
    assert rouge_l("the cat sat on the mat", "the cat lay on the mat") == pytest.approx(10 / 12)
    assert rouge_l("same text", "Same TEXT!") == 1.0 and rouge_l("", "text") == 0.0


def test_novelty_filter_drops_near_duplicates_of_kept_texts_only() -> None:
    texts = [
        "Write a poem about the sea.",
        "Write a poem about the sea please.",  # ROUGE-L 12/13 with the first: dropped
        "Explain how a refrigerator keeps food cold.",
        "Explain how a refrigerator keeps drinks cold.",  # 12/14 with the third: dropped
        "List three rivers in Africa.",
    ]
    assert novelty_filter(texts) == [texts[0], texts[2], texts[4]]
    assert novelty_filter(texts, threshold=1.0) == texts
    assert novelty_filter(["a b", "b c", "c d"], threshold=0.0) == ["a b", "c d"]


def test_encoded_duplicates_are_one_effective_item() -> None:
    encoder = shared_encoder("hashing")
    embeddings = encoder.encode(["Plan a trip to Rome."] * 4 + ["Bake bread at home."] * 4)
    assert vendi_score(embeddings) == pytest.approx(2.0, abs=0.2)
    assert mean_nearest_neighbour_distance(embeddings) == pytest.approx(0.0, abs=1e-6)


def test_diversity_summary_of_a_set_too_small_for_pairs_is_nan_and_never_encodes():
    def encode(texts: list[str]) -> np.ndarray:
        raise AssertionError("a set without pairs must not be encoded")

    summary = diversity_summary(["Only one rewrite survived."], encode)
    assert summary["items"] == 1
    assert summary["words_mean"] == 4
    assert np.isnan(summary["vendi_score"]) and np.isnan(summary["distinct_2"])


def test_diversity_summary_agrees_with_the_single_measures():
    texts = ["Name a red fruit.", "Explain how tides work.", "Name a red fruit."]
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    summary = diversity_summary(texts, lambda batch: embeddings[: len(batch)])
    assert summary["items"] == 3
    assert summary["vendi_score"] == pytest.approx(vendi_score(embeddings))
    assert summary["vendi_per_item"] == pytest.approx(vendi_score(embeddings) / 3)
    assert summary["distinct_1"] == pytest.approx(distinct_n(texts, 1))
    assert summary["mean_nearest_neighbour_distance"] == pytest.approx(
        1 / 3
    )  # only the tides item stands alone


@pytest.mark.parametrize("size", [2, 5, 12])
def test_subsets_of_identical_items_have_vendi_one_at_any_size(size: int) -> None:
    result = subsampled_vendi(np.tile([[0.3, -1.2, 2.0]], (12, 1)), size, resamples=20)
    assert (result.size, result.mean, result.low, result.high) == pytest.approx((size, 1.0, 1.0, 1.0))


@pytest.mark.parametrize("size", [2, 3, 7])
def test_subsets_of_orthogonal_items_have_vendi_equal_to_their_size(size: int) -> None:
    result = subsampled_vendi(np.eye(9) * 2.0, size, resamples=50, seed=3)
    assert (result.mean, result.low, result.high) == pytest.approx((size, size, size))
    assert result.per_item == pytest.approx(1.0) and result.resamples == 50


def test_subsampling_removes_the_size_advantage_of_a_larger_set() -> None:
    # Every item orthogonal to every other: raw Vendi is the set's size (4 vs 40), though the two
    # sets are equally diverse per item; on subsets of the smaller set's size both score 4.
    small = np.eye(4)
    large = np.eye(40)
    assert vendi_score(large) == pytest.approx(40.0)
    compared = size_controlled_vendi({"small": small, "large": large}, resamples=30)
    assert compared["small"] is not None and compared["large"] is not None
    assert compared["small"].size == compared["large"].size == 4
    assert compared["small"].mean == pytest.approx(4.0) and compared["large"].mean == pytest.approx(4.0)
    assert compared["small"].resamples == 1  # the whole set: one subset


def test_subsampling_is_seeded_and_its_interval_holds_the_mean() -> None:
    embeddings = np.random.default_rng(0).normal(size=(30, 6))
    first = subsampled_vendi(embeddings, 8, resamples=40, seed=1)
    assert subsampled_vendi(embeddings, 8, resamples=40, seed=1) == first
    assert subsampled_vendi(embeddings, 8, resamples=40, seed=2) != first
    assert first.low < first.mean < first.high <= 8.0


def test_the_common_subsample_size() -> None:
    assert common_subsample_size([9, 17, 30]) == 9
    assert common_subsample_size([9, 1, 0, 17]) == 9  # sets without pairs are left out
    assert common_subsample_size([9, 17], size=5) == 5
    for sizes, size in (([9, 17], 10), ([9, 17], 1), ([1, 0], 0)):
        with pytest.raises(ValueError):
            common_subsample_size(sizes, size)
    with pytest.raises(ValueError, match="between 1 and the set's 3 items"):
        subsampled_vendi(np.eye(3), 4)


def test_compared_diversity_adds_size_controlled_columns_and_keeps_raw_vendi() -> None:
    vectors = {"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0, 0.0], "c": [0.0, 0.0, 1.0]}
    sets = {"two": ["a", "b"], "three": ["a", "b", "c"], "one": ["a"]}
    columns = compared_diversity(sets, lambda texts: np.array([vectors[t] for t in texts]), resamples=10)
    assert columns["three"]["vendi_score"] == pytest.approx(3.0)  # raw, at n = 3
    assert columns["three"]["vendi_subsample_size"] == 2 == columns["two"]["vendi_subsample_size"]
    assert columns["three"]["vendi_subsampled"] == pytest.approx(2.0)
    assert columns["three"]["vendi_subsampled_per_item"] == pytest.approx(1.0)
    assert np.isnan(columns["one"]["vendi_subsampled"]) and columns["one"]["items"] == 1
