"""Diversity measures of an instruction set (definitions in paper-notes.md), as pure functions.

Embedding-based measures take a ``(n, d)`` array and L2-normalise its rows themselves, so any
encoder's output works (``teams_env.encoder.shared_encoder(spec).encode(texts)``). Text-based
measures use one tokenisation: lowercased word tokens (``\\w+``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

_WORD = re.compile(r"\w+")
_NEIGHBOUR_BLOCK = 1024
"""Rows per block of the nearest-neighbour search: memory stays O(block * n), not O(n^2)."""


def words(text: str) -> list[str]:
    """The lowercased word tokens of ``text`` (the tokenisation of every text measure here)."""
    return _WORD.findall(text.lower())


def _unit_rows(embeddings: np.ndarray) -> np.ndarray:
    matrix = np.asarray(embeddings, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"expected a non-empty (n, d) array of embeddings, got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("an embedding is all zeros: its cosine similarity is undefined")
    return matrix / norms


def vendi_score(embeddings: np.ndarray) -> float:
    """The effective number of distinct items: ``exp(-sum(l * log l))`` over the eigenvalues ``l`` of
    ``K / n``, ``K`` the cosine-similarity matrix of the ``n`` rows.

    1 for identical items, ``n`` for mutually orthogonal ones. ``K / n = X X^T / n`` shares its
    non-zero eigenvalues with ``X^T X / n``, so the smaller of the two is decomposed.
    """
    unit = _unit_rows(embeddings)
    n, d = unit.shape
    gram = unit @ unit.T if n <= d else unit.T @ unit
    eigenvalues = np.clip(np.linalg.eigvalsh(gram / n), 0.0, None)
    positive = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-np.sum(positive * np.log(positive))))


SUBSAMPLE_RESAMPLES = 200
"""Random subsets drawn per set by :func:`subsampled_vendi` unless told otherwise."""


@dataclass(frozen=True)
class SubsampledVendi:
    """Vendi score of random equal-sized subsets of one set: sets of different sizes compare
    like for like only this way (the raw score grows with the number of items)."""

    size: int
    """Items in each subset."""
    resamples: int
    """Subsets drawn (1 when ``size`` is the whole set: every subset is the set itself)."""
    mean: float
    low: float
    """Lower end of the central interval over subsets (``confidence``: 95% unless told otherwise)."""
    high: float

    @property
    def per_item(self) -> float:
        return self.mean / self.size


def common_subsample_size(sizes: Iterable[int], size: int = 0) -> int:
    """The subset size for comparing sets of ``sizes`` items: ``size`` when given (it must fit the
    smallest set), else the smallest set's size. Sets of fewer than 2 items are left out."""
    usable = [n for n in sizes if n >= 2]
    if not usable:
        raise ValueError("no set has the 2 items a diversity comparison needs")
    smallest = min(usable)
    if size < 0 or size == 1 or size > smallest:
        raise ValueError(
            f"subsample size must be between 2 and the smallest set's {smallest} items, got {size}"
        )
    return size or smallest


def subsampled_vendi(
    embeddings: np.ndarray,
    size: int,
    resamples: int = SUBSAMPLE_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> SubsampledVendi:
    """Vendi score of ``resamples`` random subsets of ``size`` rows (drawn without replacement, from
    ``numpy.random.default_rng(seed)``): their mean and central ``confidence`` interval."""
    unit = _unit_rows(embeddings)
    n = unit.shape[0]
    if not 1 <= size <= n:
        raise ValueError(f"subsample size must be between 1 and the set's {n} items, got {size}")
    if resamples < 1 or not 0.0 < confidence < 1.0:
        raise ValueError(f"need resamples >= 1 and 0 < confidence < 1, got {resamples} and {confidence}")
    if size == n:
        score = vendi_score(unit)
        return SubsampledVendi(size=size, resamples=1, mean=score, low=score, high=score)
    rng = np.random.default_rng(seed)
    scores = np.array([vendi_score(unit[rng.choice(n, size=size, replace=False)]) for _ in range(resamples)])
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(scores, [tail, 100 - tail])
    return SubsampledVendi(
        size=size, resamples=resamples, mean=float(scores.mean()), low=float(low), high=float(high)
    )


def size_controlled_vendi(
    sets: Mapping[str, np.ndarray], size: int = 0, resamples: int = SUBSAMPLE_RESAMPLES, seed: int = 0
) -> dict[str, SubsampledVendi | None]:
    """:func:`subsampled_vendi` of every set at one size (``size``, or the smallest set's); ``None``
    for a set of fewer than 2 items (or none)."""
    common = common_subsample_size((len(e) for e in sets.values()), size)
    return {
        name: subsampled_vendi(embeddings, common, resamples, seed) if len(embeddings) >= 2 else None
        for name, embeddings in sets.items()
    }


def subsampled_columns(result: SubsampledVendi | None) -> dict[str, float]:
    """A :class:`SubsampledVendi` as the flat keys of a diversity summary (NaN for ``None``)."""
    nan = float("nan")
    return {
        "vendi_subsample_size": result.size if result else nan,
        "vendi_subsampled": result.mean if result else nan,
        "vendi_subsampled_low": result.low if result else nan,
        "vendi_subsampled_high": result.high if result else nan,
        "vendi_subsampled_per_item": result.per_item if result else nan,
        "vendi_subsample_resamples": result.resamples if result else nan,
    }


def mean_pairwise_cosine_distance(embeddings: np.ndarray) -> float:
    """Mean of ``1 - cos(x_i, x_j)`` over all pairs ``i < j`` (0: identical items, 1: orthogonal)."""
    unit = _unit_rows(embeddings)
    n = unit.shape[0]
    if n < 2:
        raise ValueError("mean pairwise distance needs at least 2 items")
    # sum over all ordered pairs of x_i . x_j is |sum x|^2; removing the n diagonal terms leaves 2 * sum_{i<j}.
    total = unit.sum(axis=0)
    pair_similarity = (float(total @ total) - n) / 2
    return 1.0 - pair_similarity / (n * (n - 1) / 2)


def mean_nearest_neighbour_distance(embeddings: np.ndarray) -> float:
    """Mean over items of the cosine distance to the closest other item (0 when every item has a
    duplicate; high when every item stands alone)."""
    unit = _unit_rows(embeddings)
    n = unit.shape[0]
    if n < 2:
        raise ValueError("nearest-neighbour distance needs at least 2 items")
    nearest = np.empty(n)
    for start in range(0, n, _NEIGHBOUR_BLOCK):
        block = unit[start : start + _NEIGHBOUR_BLOCK] @ unit.T
        rows = np.arange(block.shape[0])
        block[rows, start + rows] = -np.inf  # an item is not its own neighbour
        nearest[start : start + block.shape[0]] = block.max(axis=1)
    return float(np.mean(1.0 - nearest))


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Unique word n-grams / total word n-grams over the set (n-grams do not cross texts); 0 when
    the texts hold no n-gram."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    total = 0
    unique: set[tuple[str, ...]] = set()
    for text in texts:
        tokens = words(text)
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


@dataclass(frozen=True)
class LengthStats:
    """Lengths of a set of texts, in words."""

    count: int
    mean: float
    std: float
    min: int
    median: float
    max: int


def length_stats(texts: Sequence[str]) -> LengthStats:
    """Count and word-length statistics of ``texts`` (all zero for an empty set)."""
    lengths = np.array([len(words(text)) for text in texts])
    if lengths.size == 0:
        return LengthStats(count=0, mean=0.0, std=0.0, min=0, median=0.0, max=0)
    return LengthStats(
        count=int(lengths.size),
        mean=float(lengths.mean()),
        std=float(lengths.std()),
        min=int(lengths.min()),
        median=float(np.median(lengths)),
        max=int(lengths.max()),
    )


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Allison-Dix / Hyyrö): one big-integer
    update per token of ``a`` instead of a ``len(a) * len(b)`` table."""
    if not a or not b:
        return 0
    positions: dict[str, int] = {}
    for index, token in enumerate(b):
        positions[token] = positions.get(token, 0) | (1 << index)
    width = (1 << len(b)) - 1
    row = width
    for token in a:
        matches = row & positions.get(token, 0)
        row = ((row + matches) | (row - matches)) & width
    return len(b) - row.bit_count()


def _rouge_l_tokens(a: Sequence[str], b: Sequence[str]) -> float:
    if not a or not b:
        return 0.0
    return 2.0 * _lcs_length(a, b) / (len(a) + len(b))


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F-measure (beta 1) of two texts over word tokens: ``2 * LCS / (len(a) + len(b))``.
    Symmetric; 1 for the same words in the same order, 0 when no word is shared."""
    return _rouge_l_tokens(words(a), words(b))


def novelty_filter(texts: Iterable[str], threshold: float = 0.7) -> list[str]:
    """Self-Instruct's novelty filter: keep a text only if its ROUGE-L against every text kept
    before it is at most ``threshold``. Returns the kept texts, in order."""
    kept: list[str] = []
    kept_tokens: list[list[str]] = []
    for text in texts:
        tokens = words(text)
        # 2 * min / (la + lb) bounds ROUGE-L from above: pairs whose lengths differ enough are skipped.
        if all(
            2 * min(len(tokens), len(other)) <= threshold * (len(tokens) + len(other))
            or _rouge_l_tokens(tokens, other) <= threshold
            for other in kept_tokens
        ):
            kept.append(text)
            kept_tokens.append(tokens)
    return kept


def diversity_summary(texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> dict[str, float]:
    """Every diversity measure of one instruction set, ``encode`` giving its ``(n, d)`` embeddings.

    Fewer than two texts have no pairs: the embedding and n-gram measures are then NaN (a bench
    seed whose agent kept nothing still gets a row).
    """
    lengths = asdict(length_stats(texts))
    del lengths["count"]
    summary: dict[str, float] = {"items": len(texts)}
    if len(texts) < 2:
        pairwise = dict.fromkeys(
            (
                "vendi_score",
                "vendi_per_item",
                "distinct_1",
                "distinct_2",
                "mean_pairwise_cosine_distance",
                "mean_nearest_neighbour_distance",
            ),
            float("nan"),
        )
    else:
        embeddings = encode(list(texts))
        vendi = vendi_score(embeddings)
        pairwise = {
            "vendi_score": vendi,
            "vendi_per_item": vendi / len(texts),
            "distinct_1": distinct_n(texts, 1),
            "distinct_2": distinct_n(texts, 2),
            "mean_pairwise_cosine_distance": mean_pairwise_cosine_distance(embeddings),
            "mean_nearest_neighbour_distance": mean_nearest_neighbour_distance(embeddings),
        }
    return {**summary, **pairwise, **{f"words_{name}": value for name, value in lengths.items()}}


def compared_diversity(
    sets: Mapping[str, Sequence[str]],
    encode: Callable[[list[str]], np.ndarray],
    size: int = 0,
    resamples: int = SUBSAMPLE_RESAMPLES,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """:func:`diversity_summary` of each set, plus its Vendi score on random subsets of one common
    size (``size``, or the smallest set's; the ``vendi_subsample*`` keys), so that sets of different
    sizes compare like for like. Each set is encoded once."""
    embedded = {name: encode(list(texts)) for name, texts in sets.items() if len(texts) >= 2}
    common = common_subsample_size((len(e) for e in embedded.values()), size) if embedded else 0
    columns: dict[str, dict[str, float]] = {}
    for name, texts in sets.items():
        embeddings = embedded.get(name)
        summary = diversity_summary(texts, lambda _, e=embeddings: e)
        sub = subsampled_vendi(embeddings, common, resamples, seed) if embeddings is not None else None
        columns[name] = {**summary, **subsampled_columns(sub)}
    return columns
