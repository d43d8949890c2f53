"""A reviewer trained by the project: two logistic heads on the reviewer LLM's hidden state.

The reviewer model reads the pair the way a reward model reads a (prompt, reply): the instruction
before is the prompt, the rewrite is the reply (:func:`head_conversation`), and the model's final
hidden state at the reply's last token is the feature vector. One head gives P(Not Equal), the
other P(valid rewrite). Both are L2-regularised logistic regressions fitted by Newton's method on
the benchmark's training split; decision thresholds come from cross-validated predictions grouped
by base instruction, so no pair ever sets a threshold for itself.

Why not the labels' likelihood: the 135M model's own "Equal"/"Not Equal" tokens rank real
evolutions against surface edits at chance (ROC AUC 0.45), while its hidden state, read by a head
fitted on a few hundred pairs, separates the held-out pairs well (benchmarks/results/reviewer_bench).

A head on the hidden state alone learns its author: fitted on one set of pairs it ranked another
source's pairs worse than plain sentence-embedding distance did. So a head may also read a few
features of the pair computed with a sentence encoder (:data:`ENCODER_FEATURES`: the embedding
distance of before and after, the length ratio, whether data was added and how well it fits the
request); the file names the features and the encoder, and the reviewer computes the same ones at
judge time. The hidden state can be reduced to its first principal components while fitting, so
576 dimensions do not drown the few encoder features; the fitted weights are mapped back onto the
standardised hidden state, so the file stores no projection (benchmarks/reviewer_cross_set.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from teams_env.llm.base import Conversation
from teams_env.reward.elimination import STOP_WORDS

if TYPE_CHECKING:
    from teams_env.encoder import SentenceEncoder

BUNDLED_HEAD = Path(__file__).parents[1] / "data" / "review_head.json"
HEAD_FORMAT = 2
"""Format 2 names the head's features (:attr:`ReviewHead.features`); format 1 files (hidden state
only) are still read."""
READ_FORMATS = (1, 2)

HIDDEN = "hidden"
"""The reviewer model's final hidden state: the first feature block of every head."""

HEAD_TASK = (
    "Rewrite the instruction below. The rewrite may keep the same request or ask for more or "
    "something different."
)


def head_conversation(before: str, after: str) -> Conversation:
    """The chat whose last token's hidden state the heads read: ``after`` as the reply to ``before``."""
    return [
        {"role": "user", "content": f"{HEAD_TASK}\n\nInstruction: {before}"},
        {"role": "assistant", "content": after},
    ]


def prompt_fingerprint() -> str:
    """A hash of the head's prompt: a head is only valid on the prompt it was trained with."""
    sample = head_conversation("{before}", "{after}")
    return hashlib.sha256(json.dumps(sample).encode("utf-8")).hexdigest()[:16]


_WORD = re.compile(r"\w+")


def split_request(text: str) -> tuple[str, str]:
    """(request, data) of an instruction: its first line, and what follows it (a table, code,
    JSON, a list; empty for a one-line instruction)."""
    request, _, data = text.strip().partition("\n")
    return request.strip(), data.strip()


def _added_data(before: str, after: str) -> str:
    """The data lines of ``after`` that ``before`` does not have: what the rewrite brought in."""
    had = {line.strip() for line in split_request(before)[1].splitlines()}
    return "\n".join(line for line in split_request(after)[1].splitlines() if line.strip() not in had).strip()


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def _distance(pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    return 1.0 - _cosine_rows(embed([a for a, _ in pairs]), embed([b for _, b in pairs]))


def _length_ratio(pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    return np.array([np.log((1 + len(_WORD.findall(b))) / (1 + len(_WORD.findall(a)))) for a, b in pairs])


def _has_data(pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    return np.array([float(bool(_WORD.search(_added_data(a, b)))) for a, b in pairs])


def _data_fit(pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    data = [_added_data(a, b) for a, b in pairs]
    has = np.array([bool(_WORD.search(d)) for d in data])
    requests = [before for before, _ in pairs]
    # Where nothing was added the text embedded is the request itself; the feature is 0 there anyway.
    fit = _cosine_rows(embed(requests), embed([d if h else r for d, h, r in zip(data, has, requests)]))
    return np.where(has, fit, 0.0)


def _data_fit_sq(pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    return _data_fit(pairs, embed) ** 2


def _content_words(text: str) -> list[str]:
    """Words of at least 3 letters that are no stop words, a plural's final s dropped."""
    words = (w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 3 and w not in STOP_WORDS)
    return [w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words]


def _data_echo(pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    shares = []
    for before, after in pairs:
        data, request = _content_words(_added_data(before, after)), set(_content_words(before))
        shares.append(sum(word in request for word in data) / len(data) if data else 0.0)
    return np.array(shares)


ENCODER_FEATURES: dict[
    str, Callable[[Sequence[tuple[str, str]], Callable[[list[str]], np.ndarray]], np.ndarray]
] = {
    "distance": _distance,
    "length_ratio": _length_ratio,
    "has_data": _has_data,
    "data_fit": _data_fit,
    "data_fit_sq": _data_fit_sq,
    "data_echo": _data_echo,
}
"""Features of a (before, after) pair computed with a sentence encoder (or by counting words):

- ``distance``: cosine distance of the embeddings of before and after;
- ``length_ratio``: log of the ratio of their word counts (each plus one);
- ``has_data``: 1 where the rewrite adds lines below its first (a table, code, JSON, a list);
- ``data_fit``: cosine similarity of the instruction before and the data added (0 where none),
  and ``data_fit_sq`` its square: junk data lies at both ends (a table of birthdays under a
  question about seasons far below coherent data; nonsense code spelled with the request's own
  words far above it), so a linear head needs both to mark the band between;
- ``data_echo``: the share of the added data's content words that the instruction already had
  (code or JSON whose names only repeat the request, ``def fluffy(omelette)``).
"""

DEFAULT_ENCODER_FEATURES = tuple(ENCODER_FEATURES)
"""The features ``teams-rl train-reviewer`` fits on unless told otherwise
(benchmarks/results/reviewer_cross_set.md measures them against the hidden state alone)."""


def encoder_features(
    encoder: SentenceEncoder, pairs: Sequence[tuple[str, str]], names: Sequence[str]
) -> np.ndarray:
    """The ``names`` features (:data:`ENCODER_FEATURES`) of each pair: a (pairs, names) matrix."""
    unknown = [name for name in names if name not in ENCODER_FEATURES]
    if unknown:
        raise ValueError(f"unknown review head feature '{unknown[0]}'; known: {', '.join(ENCODER_FEATURES)}")

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(encoder.encode(texts), dtype=np.float64)

    if not names or not pairs:
        return np.zeros((len(pairs), len(names)))
    return np.column_stack([ENCODER_FEATURES[name](pairs, embed) for name in names])


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


@dataclass(frozen=True)
class LogisticHead:
    weights: tuple[float, ...]
    """Per standardised feature, then the bias."""
    threshold: float
    """The probability from which the positive class is called."""

    def probability(self, standardised: np.ndarray) -> np.ndarray:
        w = np.asarray(self.weights)
        return sigmoid(standardised @ w[:-1] + w[-1])


@dataclass(frozen=True)
class ReviewHead:
    """The two heads, the feature standardisation, and what they were trained on."""

    model_id: str
    """The reviewer backend's ``model_id`` the features came from; another model is refused."""
    prompt: str
    """:func:`prompt_fingerprint` at training time."""
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    """Standardisation of every feature: the hidden state's dimensions, then the encoder features."""
    not_equal: LogisticHead
    valid: LogisticHead
    training: dict[str, Any] = field(default_factory=dict)
    features: tuple[str, ...] = (HIDDEN,)
    """What the head reads, in order: ``"hidden"`` (the hidden state), then encoder features
    (:data:`ENCODER_FEATURES`)."""
    encoder: str = ""
    """The sentence encoder (its ``name``) of the encoder features; empty when there are none."""

    def __post_init__(self) -> None:
        if not self.features or self.features[0] != HIDDEN:
            raise ValueError(f"a review head's first feature must be '{HIDDEN}', got {list(self.features)}")
        unknown = [name for name in self.encoder_feature_names if name not in ENCODER_FEATURES]
        if unknown:
            raise ValueError(f"unknown feature '{unknown[0]}'; known: {', '.join(ENCODER_FEATURES)}")
        if self.encoder_feature_names and not self.encoder:
            raise ValueError("a head with encoder features must name its encoder")

    @property
    def encoder_feature_names(self) -> tuple[str, ...]:
        return self.features[1:]

    @property
    def hidden_size(self) -> int:
        return len(self.mean) - len(self.encoder_feature_names)

    @property
    def fingerprint(self) -> str:
        """A hash of everything that decides the head's verdicts (weights, thresholds, features,
        encoder, model, prompt): packs and caches keyed on the reviewer name it."""
        data = _rounded({k: v for k, v in asdict(self).items() if k != "training"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()[:16]

    def predict(
        self, states: Sequence[np.ndarray], extra: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(P(Not Equal), P(valid)) for each hidden-state vector; ``extra``: the pairs' encoder
        features (:func:`encoder_features` of :attr:`encoder_feature_names`), where the head has any."""
        matrix = np.asarray(states, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.hidden_size:
            raise ValueError(
                f"review head expects hidden states of size {self.hidden_size}, got shape {matrix.shape}"
            )
        names = self.encoder_feature_names
        if names:
            if extra is None:
                raise ValueError(f"review head reads encoder features ({', '.join(names)}); none given")
            extra = np.asarray(extra, dtype=np.float64)
            if extra.shape != (len(matrix), len(names)):
                raise ValueError(
                    f"review head expects encoder features of shape {(len(matrix), len(names))}, got {extra.shape}"
                )
            matrix = np.hstack([matrix, extra])
        standardised = (matrix - np.asarray(self.mean)) / np.asarray(self.scale)
        return self.not_equal.probability(standardised), self.valid.probability(standardised)

    def save(self, path: str | os.PathLike[str]) -> None:
        data = {"format": HEAD_FORMAT, **_rounded(asdict(self))}
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_suffix(target.suffix + ".tmp")
        staging.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(staging, target)

    @classmethod
    def load(cls, path: str | os.PathLike[str] = BUNDLED_HEAD) -> ReviewHead:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: review head not found (train one with teams-rl train-reviewer)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            version = data.pop("format", None)
            if version not in READ_FORMATS:
                raise ValueError(
                    f"unsupported format {version!r} (this version reads formats "
                    f"{', '.join(map(str, READ_FORMATS))}); retrain it with teams-rl train-reviewer"
                )
            return cls(
                model_id=str(data["model_id"]),
                prompt=str(data["prompt"]),
                mean=tuple(data["mean"]),
                scale=tuple(data["scale"]),
                not_equal=LogisticHead(tuple(data["not_equal"]["weights"]), data["not_equal"]["threshold"]),
                valid=LogisticHead(tuple(data["valid"]["weights"]), data["valid"]["threshold"]),
                training=dict(data.get("training", {})),
                # Format 1 heads read the hidden state alone.
                features=tuple(data.get("features", (HIDDEN,))),
                encoder=str(data.get("encoder", "")),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a review head ({error})") from None


def _rounded(value: Any) -> Any:
    """Floats to 7 significant digits: the file stays small and reads the same everywhere."""
    if isinstance(value, float):
        return float(f"{value:.7g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value
