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
from teams_env.reward.junk_rules import JUDGE_DETECTORS, content_words

if TYPE_CHECKING:
    from teams_env.encoder import SentenceEncoder

BUNDLED_HEAD = Path(__file__).parents[1] / "data" / "review_head.json"
SHIPPED_HEADS = {
    "bundled": BUNDLED_HEAD,
    "pairs-v1": BUNDLED_HEAD.with_name("review_head_pairs_v1.json"),
}
"""Review heads that ship with the env, by name: ``bundled`` (the default judge) and earlier heads
packs were recorded with (``pairs-v1``: fitted on the written pair sets A and B alone, no GOOD head
and no judge rules), so a pack's replay and its live env keep one judge."""


def head_path(spec: str | os.PathLike[str]) -> Path:
    """The file of a review head spec: a shipped head's name (:data:`SHIPPED_HEADS`) or a path."""
    return SHIPPED_HEADS.get(str(spec), Path(spec))


def shipped_head_name(fingerprint: str) -> str | None:
    """The name of the shipped head with this :attr:`ReviewHead.fingerprint`, else None."""
    for name, path in SHIPPED_HEADS.items():
        if path.is_file() and ReviewHead.load(path).fingerprint == fingerprint:
            return name
    return None


HEAD_FORMAT = 3
"""Format 3 may hold a GOOD head and judge rules (:attr:`ReviewHead.good`, :attr:`ReviewHead.rules`);
format 2 names the head's features (:attr:`ReviewHead.features`); format 1 files (hidden state
only) are still read."""
READ_FORMATS = (1, 2, 3)

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


def _data_echo(pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    shares = []
    for before, after in pairs:
        data, request = content_words(_added_data(before, after)), set(content_words(before))
        shares.append(sum(word in request for word in data) / len(data) if data else 0.0)
    return np.array(shares)


def _word_change(before: str, after: str) -> tuple[list[str], set[str], set[str]]:
    """(the content words of ``after``, those new to it, those of ``before`` it dropped)."""
    had, has = set(content_words(before)), content_words(after)
    return has, {w for w in has if w not in had}, had - set(has)


def _new_words(pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    return np.array([np.log1p(len(_word_change(a, b)[1])) for a, b in pairs])


def _new_share(pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    shares = []
    for a, b in pairs:
        has, new, _ = _word_change(a, b)
        shares.append(len(new) / (1 + len(set(has))))
    return np.array(shares)


def _dropped_share(pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    return np.array([len(_word_change(a, b)[2]) / (1 + len(set(content_words(a)))) for a, b in pairs])


def _repeated_share(pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    from teams_env.reward.validity import repeated_share

    return np.array([repeated_share(b) for _, b in pairs])


_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


def _sentences_added(
    pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]
) -> np.ndarray:
    return np.array(
        [len(_SENTENCE_END.findall(b)) - len(_SENTENCE_END.findall(a)) for a, b in pairs], dtype=float
    )


def _digits_added(pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    return np.array(
        [
            np.sign(d) * np.log1p(abs(d))
            for d in (sum(map(str.isdigit, b)) - sum(map(str.isdigit, a)) for a, b in pairs)
        ]
    )


def _keeps_start(pairs: Sequence[tuple[str, str]], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    return np.array([float(b.strip().lower().startswith(a.strip()[:30].lower())) for a, b in pairs])


ENCODER_FEATURES: dict[
    str, Callable[[Sequence[tuple[str, str]], Callable[[list[str]], np.ndarray]], np.ndarray]
] = {
    "distance": _distance,
    "length_ratio": _length_ratio,
    "has_data": _has_data,
    "data_fit": _data_fit,
    "data_fit_sq": _data_fit_sq,
    "data_echo": _data_echo,
    "new_words": _new_words,
    "new_share": _new_share,
    "dropped_share": _dropped_share,
    "repeated_share": _repeated_share,
    "sentences_added": _sentences_added,
    "digits_added": _digits_added,
    "keeps_start": _keeps_start,
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
  (code or JSON whose names only repeat the request, ``def fluffy(omelette)``);
- counted on words (:func:`~teams_env.reward.junk_rules.content_words`), for the GOOD head, where
  the reading protocol's labels turn on how much a rewrite adds and what it drops: ``new_words``
  (log of one plus the content words new to the rewrite), ``new_share`` (their share of its
  distinct content words), ``dropped_share`` (the share of the instruction's content words the
  rewrite lost), ``repeated_share`` (of its word trigrams that repeat), ``sentences_added``,
  ``digits_added`` (signed log of the digits it added) and ``keeps_start`` (it begins with
  the instruction's first 30 characters).
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


ACTION = "action"
"""A GOOD head's block of one indicator per action: what GOOD means depends on the action (breadth
asks for a new task, the others for the same task with more to it)."""


def action_columns(
    actions: Sequence[int], standardised_extra: np.ndarray, extra_names: Sequence[str], names: Sequence[str]
) -> np.ndarray:
    """A GOOD head's action block: per name, six columns (one per action, in
    :data:`~teams_env.actions.ACTION_NAMES` order): ``"action"`` the action's indicator,
    ``"action*F"`` the indicator times the standardised encoder feature F, so F may weigh
    differently per action."""
    from teams_env.actions import ACTION_NAMES

    onehot = np.zeros((len(actions), len(ACTION_NAMES)))
    onehot[np.arange(len(actions)), np.asarray(actions, dtype=int)] = 1.0
    blocks = []
    for name in names:
        if name == ACTION:
            blocks.append(onehot)
        else:
            feature = name.removeprefix(f"{ACTION}*")
            blocks.append(onehot * standardised_extra[:, [list(extra_names).index(feature)]])
    return np.hstack(blocks) if blocks else np.zeros((len(actions), 0))


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
    good: LogisticHead | None = None
    """P(GOOD): the reading protocol's label (``docs/reading-protocol.md``) given the action, fitted
    on the expert's own labelled rewrites; where a head has one, it decides the reward."""
    good_features: tuple[str, ...] = ()
    """The GOOD head's action block (:func:`action_columns`), after the standardised features."""
    rules: tuple[str, ...] = ()
    """The exact rules this judge applies before its heads, beyond the env's own
    (:data:`~teams_env.reward.junk_rules.JUDGE_DETECTORS`): a pack recorded under an older head
    keeps the rules it was recorded with."""

    def __post_init__(self) -> None:
        if not self.features or self.features[0] != HIDDEN:
            raise ValueError(f"a review head's first feature must be '{HIDDEN}', got {list(self.features)}")
        unknown = [name for name in self.encoder_feature_names if name not in ENCODER_FEATURES]
        if unknown:
            raise ValueError(f"unknown feature '{unknown[0]}'; known: {', '.join(ENCODER_FEATURES)}")
        if self.encoder_feature_names and not self.encoder:
            raise ValueError("a head with encoder features must name its encoder")
        bad = [
            n
            for n in self.good_features
            if n != ACTION and n.removeprefix(f"{ACTION}*") not in self.encoder_feature_names
        ]
        if bad:
            raise ValueError(
                f"unknown GOOD head feature '{bad[0]}': '{ACTION}' or '{ACTION}*' an encoder feature"
            )
        unknown = [name for name in self.rules if name not in JUDGE_DETECTORS]
        if unknown:
            raise ValueError(f"unknown review head rule '{unknown[0]}'; known: {', '.join(JUDGE_DETECTORS)}")

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
        # Fields a head leaves empty are left out, so adding a field keeps older heads' fingerprints.
        data = _rounded({k: v for k, v in asdict(self).items() if k != "training" and v not in ((), None)})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()[:16]

    def standardise(self, states: Sequence[np.ndarray], extra: np.ndarray | None = None) -> np.ndarray:
        """The standardised features of each pair: hidden state, then the encoder features ``extra``
        (:func:`encoder_features` of :attr:`encoder_feature_names`), where the head has any."""
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
        return (matrix - np.asarray(self.mean)) / np.asarray(self.scale)

    def predict(
        self, states: Sequence[np.ndarray], extra: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(P(Not Equal), P(valid)) for each hidden-state vector (see :meth:`standardise`)."""
        standardised = self.standardise(states, extra)
        return self.not_equal.probability(standardised), self.valid.probability(standardised)

    def good_design(self, standardised: np.ndarray, actions: Sequence[int]) -> np.ndarray:
        """What the GOOD head reads: the standardised features, then its action block."""
        extra = standardised[:, self.hidden_size :]
        return np.hstack(
            [standardised, action_columns(actions, extra, self.encoder_feature_names, self.good_features)]
        )

    def predict_good(
        self, states: Sequence[np.ndarray], extra: np.ndarray | None, actions: Sequence[int]
    ) -> np.ndarray:
        """P(GOOD) of each pair under its action (an index into
        :data:`~teams_env.actions.ACTION_NAMES`)."""
        if self.good is None:
            raise ValueError("this review head has no GOOD head")
        if len(actions) != len(states):
            raise ValueError(f"{len(actions)} actions for {len(states)} pairs")
        return self.good.probability(self.good_design(self.standardise(states, extra), actions))

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
                good=LogisticHead(tuple(data["good"]["weights"]), data["good"]["threshold"])
                if data.get("good")
                else None,
                good_features=tuple(data.get("good_features", ())),
                rules=tuple(data.get("rules", ())),
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
