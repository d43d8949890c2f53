"""The reviewer: is a rewritten instruction "Equal" to the one before it, or "Not Equal" (it added
information)? Decided by comparing the likelihood of the two labels, so there is no free-form
text to parse; servers without log-probabilities fall back to a generated verdict."""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from teams_env.encoder import SentenceEncoder
from teams_env.llm.base import ChoiceScores, Conversation, GenerationParams, ScoringUnsupported
from teams_env.llm.service import LLMService
from teams_env.reward.formula import EQUAL, LABELS, NOT_EQUAL
from teams_env.reward.review_head import (
    ReviewHead,
    encoder_features,
    head_conversation,
    head_path,
    prompt_fingerprint,
)
from teams_env.reward.validity import InvalidReason, rule_violation

REVIEW_QUESTION = (
    "Compare the two instructions below. If the second one is the same request as the first, with the "
    "same constraints, requirements, depth and breadth, answer Equal. If the second one asks for more, "
    "less or something different, answer Not Equal."
)
FIRST_MARKER = "\n\nFirst instruction: "
SECOND_MARKER = "\n\nSecond instruction: "
ANSWER_LINE = "\n\nAnswer Equal or Not Equal."
# The few-shot prompt of the label-likelihood reviewer (the method for models without a review
# head, e.g. a server). Two worked examples: more of them made SmolLM2-135M worse when this was
# tuned in v0.1. No system message: each model's own default.
DEMONSTRATIONS = (
    ("Write a haiku about autumn.", "Write a haiku about autumn.", EQUAL),
    (
        "List three uses of baking soda.",
        "List three uses of baking soda in the kitchen, each with a one-sentence example.",
        NOT_EQUAL,
    ),
)

logger = logging.getLogger(__name__)

ReviewMethod = Literal["auto", "head", "likelihood", "generate", "embedding"]

# Anchor pairs with known answers, for calibrating the decision threshold of a likelihood reviewer
# (none of them is a seed or a demonstration). A strong reviewer puts the Equal group near 0 and
# the Not Equal group near 1, and the threshold lands near 0.5; a small one is biased towards one
# label, and the midpoint between the groups removes that bias.
CALIBRATION_EQUAL = (
    ("Describe how a rainbow forms.", "Describe how a rainbow forms."),
    ("Suggest a name for a bakery.", "Suggest a name for a bakery."),
    ("What are the benefits of cycling to work?", "What are the benefits of cycling to work?"),
    ("Explain what a budget deficit is.", "Please explain what a budget deficit is."),
    ("Write a limerick about a cat.", "Write a limerick about a cat!"),
    ("List four planets of the solar system.", "List four of the planets in the solar system."),
)
CALIBRATION_NOT_EQUAL = (
    (
        "Describe how a rainbow forms.",
        "Describe how a rainbow forms, why its colours always appear in the same order, and what a double rainbow is.",
    ),
    (
        "Suggest a name for a bakery.",
        "Suggest five names for a vegan bakery in a seaside town, each with a one-line explanation.",
    ),
    (
        "What are the benefits of cycling to work?",
        "What are the health, cost and environmental benefits of cycling 10 km to work, compared with driving?",
    ),
    ("Explain what a budget deficit is.", "Write a short story about a lighthouse keeper."),
    ("Write a limerick about a cat.", "Explain how compound interest works with a worked example."),
    (
        "List four planets of the solar system.",
        "List four planets of the solar system in a table with their diameters and distances from the Sun.",
    ),
)


@dataclass(frozen=True)
class Judgement:
    verdict: str
    """``"Equal"`` or ``"Not Equal"``."""
    p_not_equal: float
    """The reviewer's probability of "Not Equal" (0.5 when a generated verdict named neither label)."""
    method: str
    """``"head"``, ``"likelihood"``, ``"generate"``, ``"embedding"``, or ``"rule"`` (no model asked)."""
    undecided: bool = False
    """The reviewer named neither label; counted as Equal (no reward)."""
    p_valid: float | None = None
    """The review head's probability that the rewrite is a valid instruction (None without a head)."""
    invalid_reason: str | None = None
    """Why the rewrite is no valid instruction (:class:`~teams_env.reward.validity.InvalidReason`), else None."""
    p_good: float | None = None
    """The GOOD head's probability that a careful reader calls the rewrite GOOD for its action
    (None without a GOOD head)."""
    good: bool | None = None
    """P(GOOD) reached the head's threshold (None without a GOOD head)."""

    @property
    def not_equal(self) -> bool:
        return self.verdict == NOT_EQUAL

    @property
    def valid(self) -> bool:
        return self.invalid_reason is None

    @property
    def rewarded(self) -> bool:
        """What the env rewards: a valid rewrite that adds information and, where the head judges
        GOOD, one it calls GOOD."""
        return self.not_equal and self.valid and self.good is not False


_HEAD_PROBLEMS_SAID: set[str] = set()
"""Why the review head was not used, as already logged in this process."""


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _user_turn(first: str, second: str) -> str:
    return REVIEW_QUESTION + FIRST_MARKER + first + SECOND_MARKER + second + ANSWER_LINE


def review_conversation(first: str, second: str) -> Conversation:
    """The chat the reviewer answers to compare ``first`` (before) with ``second`` (after)."""
    messages: Conversation = []
    for before, after, label in DEMONSTRATIONS:
        messages.append({"role": "user", "content": _user_turn(before, after)})
        messages.append({"role": "assistant", "content": label})
    messages.append({"role": "user", "content": _user_turn(first, second)})
    return messages


def parse_review_conversation(conversation: Conversation) -> tuple[str, str] | None:
    """The two instructions of a chat built by :func:`review_conversation` (else None)."""
    last = conversation[-1]["content"] if conversation else ""
    head = REVIEW_QUESTION + FIRST_MARKER
    if not (last.startswith(head) and last.endswith(ANSWER_LINE) and SECOND_MARKER in last):
        return None
    first, _, second = last[len(head) : -len(ANSWER_LINE)].partition(SECOND_MARKER)
    return first, second


def parse_verdict(text: str) -> str | None:
    """A generated verdict as a label: "not equal" is tested before "equal"; None if neither."""
    words = " ".join(re.sub(r"[^a-z]+", " ", text.lower()).split())
    if "not equal" in words:
        return NOT_EQUAL
    if "equal" in words:
        return EQUAL
    return None


def head_judgements(
    head: ReviewHead,
    states: Sequence[np.ndarray],
    extra: np.ndarray | None = None,
    threshold: float | None = None,
    actions: Sequence[int] | None = None,
) -> list[Judgement]:
    """The review head's judgements from the reviewer's hidden ``states`` and, where the head reads
    them, the pairs' encoder features ``extra`` (:func:`~teams_env.reward.review_head.encoder_features`).
    ``threshold``: the P(Not Equal) from which a pair is Not Equal (None: the head's own).
    ``actions``: each pair's action, which a head with a GOOD head needs."""
    p_not_equal, p_valid = head.predict(states, extra)
    threshold = head.not_equal.threshold if threshold is None else threshold
    p_good: list[float | None] = [None] * len(p_not_equal)
    if head.good is not None:
        if actions is None:
            raise ValueError("this review head judges GOOD per action: give each pair's action")
        p_good = [float(p) for p in head.predict_good(states, extra, actions)]
    return [
        Judgement(
            NOT_EQUAL if ne >= threshold else EQUAL,
            float(ne),
            "head",
            p_valid=float(v),
            invalid_reason=None if v >= head.valid.threshold else InvalidReason.NOT_AN_INSTRUCTION.value,
            p_good=g,
            good=None if g is None or head.good is None else g >= head.good.threshold,
        )
        for ne, v, g in zip(p_not_equal, p_valid, p_good)
    ]


EMBEDDING_THRESHOLD = 0.111
"""Cosine distance (all-MiniLM-L6-v2) from which the embedding judge says Not Equal: the best
balanced accuracy on the benchmark's training split (teams-rl reviewer-bench --reviewer embedding)."""


class Reviewer:
    """Judges (before, after) instruction pairs in batches: is ``after`` Equal to ``before``, and is it
    a valid instruction? At most one LLM call per pair; rule-breaking rewrites cost none.

    ``method``:

    - ``"head"``: the trained review head reads the reviewer model's hidden state
      (:mod:`teams_env.reward.review_head`); it also judges validity. The embedded default.
    - ``"likelihood"``: the likelihood of the two labels after a few-shot comparison prompt.
    - ``"generate"``: a generated verdict, for servers without log-probabilities.
    - ``"embedding"``: cosine distance of the two sentence embeddings; no LLM at all (a baseline).
    - ``"auto"``: the head where it was trained for this reviewer model, else likelihood, falling
      back to generate.
    """

    def __init__(
        self,
        service: LLMService,
        *,
        method: ReviewMethod = "auto",
        threshold: float | str = "auto",
        head: str | os.PathLike[str] | ReviewHead = "bundled",
        encoder: SentenceEncoder | None = None,
    ) -> None:
        """``threshold``: the P(Not Equal) from which a rewrite counts as Not Equal, or ``"auto"``: the
        head's own, the embedding judge's measured one, or, for likelihood, calibrated once on the
        anchor pairs (12 queries, cached like any other). ``head``: a shipped head's name
        (:data:`~teams_env.reward.review_head.SHIPPED_HEADS`: ``"bundled"``, ...) or a head file.
        ``encoder``: the sentence encoder of the embedding judge, and of a head that reads encoder
        features where it is the head's; otherwise such a head loads its own (:meth:`head_encoder`)."""
        if method not in ("auto", "head", "likelihood", "generate", "embedding"):
            raise ValueError(
                f"unknown review method '{method}'; choose auto, head, likelihood, generate or embedding"
            )
        if threshold != "auto" and not (isinstance(threshold, (int, float)) and 0.0 < threshold < 1.0):
            raise ValueError(f"reviewer threshold must be 'auto' or in (0, 1), got {threshold!r}")
        if method == "embedding" and encoder is None:
            raise ValueError("the embedding reviewer needs a sentence encoder")
        self.service = service
        self.encoder = encoder
        self.threshold: float | None = None if threshold == "auto" else float(threshold)
        self.calibration: dict[str, float] = {}
        self.head: ReviewHead | None = None
        self._head_encoder: SentenceEncoder | None = None
        if method in ("auto", "head"):
            self.head = self._usable_head(head, required=method == "head")
            if method == "auto":
                method = "head" if self.head is not None else "auto"
            if self.head is not None:
                self._head_encoder = self.head_encoder(self.head, encoder)
        self.method: ReviewMethod = method

    @staticmethod
    def head_encoder(head: ReviewHead, given: SentenceEncoder | None = None) -> SentenceEncoder | None:
        """The sentence encoder ``head``'s features need: ``given`` where it is that encoder, else
        the process's shared one (the embedded all-MiniLM-L6-v2, or the named sentence-transformers
        model); None for a head on the hidden state alone. A one-line error where it cannot load."""
        if not head.encoder_feature_names:
            return None
        if given is not None and given.name == head.encoder:
            return given
        from teams_env.encoder import DEFAULT_ENCODER, shared_encoder
        from teams_env.llm.embedded import EMBEDDED_ENCODER_NAME

        spec = DEFAULT_ENCODER if head.encoder == EMBEDDED_ENCODER_NAME else head.encoder
        try:
            return shared_encoder(spec)
        except (OSError, ImportError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(
                f"review head reads features of sentence encoder '{head.encoder}', which cannot be loaded: "
                f"{first_line}"
            ) from None

    def _usable_head(self, head: str | os.PathLike[str] | ReviewHead, *, required: bool) -> ReviewHead | None:
        loaded = head if isinstance(head, ReviewHead) else ReviewHead.load(head_path(head))
        problem = None
        if loaded.model_id != self.service.backend.model_id:
            problem = (
                f"it was trained on '{loaded.model_id}', the reviewer is '{self.service.backend.model_id}'"
            )
        elif loaded.prompt != prompt_fingerprint():
            problem = "it was trained with another prompt"
        if problem is None:
            return loaded
        if required:
            raise ValueError(f"review head cannot judge for this reviewer: {problem}")
        # Another model is the normal case for a user's own reviewer; the same file name with other
        # weights (or another prompt) means the head went stale, which the user should hear about.
        same_name = loaded.model_id.split("@")[0] == self.service.backend.model_id.split("@")[0]
        if problem not in _HEAD_PROBLEMS_SAID:  # once per process, not once per sub-environment
            _HEAD_PROBLEMS_SAID.add(problem)
            logger.log(
                logging.WARNING if same_name else logging.INFO,
                "review head not used (%s); judging by label likelihood",
                problem,
            )
        return None

    def judge(
        self,
        pairs: Sequence[tuple[str, str]],
        cut_off: Sequence[bool] | None = None,
        actions: Sequence[int] | None = None,
    ) -> list[Judgement]:
        """A judgement per ``(before, after)``; ``cut_off`` marks rewrites that hit the token limit;
        ``actions``: the action of each pair (an index into
        :data:`~teams_env.actions.ACTION_NAMES`), which a review head with a GOOD head needs."""
        verdicts, asked = self._by_rules(pairs, cut_off)
        asked_actions = None if actions is None else [actions[i] for i in asked]
        for i, judgement in zip(asked, self._judge_valid_looking([pairs[i] for i in asked], asked_actions)):
            verdicts[i] = judgement
        return [verdicts[i] for i in range(len(pairs))]

    def _by_rules(
        self, pairs: Sequence[tuple[str, str]], cut_off: Sequence[bool] | None = None
    ) -> tuple[dict[int, Judgement], list[int]]:
        """The pairs a rule decides (by position, without a model), and the positions of the rest."""
        cut_off = cut_off or [False] * len(pairs)
        decided: dict[int, Judgement] = {}
        asked: list[int] = []
        for i, ((before, after), cut) in enumerate(zip(pairs, cut_off)):
            broken = rule_violation(before, after, cut_off=cut, judge_rules=self.judge_rules)
            if broken is None:
                asked.append(i)
            else:
                decided[i] = Judgement(EQUAL, 0.0, "rule", invalid_reason=broken.value)
        return decided, asked

    @property
    def judge_rules(self) -> tuple[str, ...]:
        """The exact rules the review head in use applies (none for other methods)."""
        return self.head.rules if self.method == "head" and self.head is not None else ()

    def _judge_valid_looking(
        self, pairs: Sequence[tuple[str, str]], actions: Sequence[int] | None
    ) -> list[Judgement]:
        if not pairs:
            return []
        if self.method == "head":
            return self._by_head(pairs, actions)
        if self.method == "embedding":
            return self._by_embedding(pairs)
        conversations = [review_conversation(first, second) for first, second in pairs]
        if self.method in ("auto", "likelihood"):
            try:
                scores = self.service.score_choices(conversations, LABELS)
                threshold = self.calibrated_threshold()
                return [self._from_scores(s, threshold) for s in scores]
            except ScoringUnsupported:
                if self.method == "likelihood":
                    raise
                self.method = "generate"  # this backend will not start giving log-probabilities
        answers = self.service.generate(
            conversations, GenerationParams(max_new_tokens=4, repetition_penalty=1.0)
        )
        return [self._from_text(answer.text) for answer in answers]

    def _head_inputs(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[np.ndarray], np.ndarray | None]:
        """What the head reads of each pair: the reviewer's hidden state, and encoder features."""
        assert self.head is not None
        states = self.service.last_hidden_states([head_conversation(a, b) for a, b in pairs])
        extra = None
        if self.head.encoder_feature_names:
            assert self._head_encoder is not None
            extra = encoder_features(self._head_encoder, pairs, self.head.encoder_feature_names)
        return states, extra

    def _by_head(self, pairs: Sequence[tuple[str, str]], actions: Sequence[int] | None) -> list[Judgement]:
        assert self.head is not None
        states, extra = self._head_inputs(pairs)
        return head_judgements(self.head, states, extra, self.decision_threshold, actions)

    def judge_every_action(self, pairs: Sequence[tuple[str, str]]) -> list[list[Judgement]]:
        """Per pair, its judgement under each action (in :data:`~teams_env.actions.ACTION_NAMES`
        order), reading each pair once: how a judge that reads the action treats a rewrite that
        was made by no action (a benchmark's copy, paraphrase or garbage). A judge that does not
        read the action gives the same judgement for all of them."""
        from teams_env.actions import ACTION_NAMES

        count = len(ACTION_NAMES)
        if self.method != "head" or self.head is None or self.head.good is None:
            return [[judgement] * count for judgement in self.judge(pairs)]
        decided, asked = self._by_rules(pairs)
        every = {i: [judgement] * count for i, judgement in decided.items()}
        if asked:
            states, extra = self._head_inputs([pairs[i] for i in asked])
            per_action = [
                head_judgements(self.head, states, extra, self.decision_threshold, [a] * len(asked))
                for a in range(count)
            ]
            for k, i in enumerate(asked):
                every[i] = [judged[k] for judged in per_action]
        return [every[i] for i in range(len(pairs))]

    def _by_embedding(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
        assert self.encoder is not None
        before = self.encoder.encode([a for a, _ in pairs])
        after = self.encoder.encode([b for _, b in pairs])
        distance = 1.0 - np.sum(before * after, axis=1)  # the encoder's rows are unit-norm
        threshold = self.decision_threshold
        return [
            Judgement(NOT_EQUAL if d >= threshold else EQUAL, float(np.clip(d, 0.0, 1.0)), "embedding")
            for d in distance
        ]

    @property
    def decision_threshold(self) -> float | None:
        """The P(Not Equal) from which this reviewer says Not Equal (None: not calibrated yet, or a
        generated verdict)."""
        if self.threshold is not None:
            return self.threshold
        if self.method == "head" and self.head is not None:
            return self.head.not_equal.threshold
        return EMBEDDING_THRESHOLD if self.method == "embedding" else None

    def calibrated_threshold(self) -> float:
        """The likelihood reviewer's decision threshold; with ``"auto"``, the P(Not Equal) halfway
        (in log-odds) between the mean of the Equal anchors and the mean of the Not Equal anchors."""
        if self.threshold is None:
            anchors = [review_conversation(a, b) for a, b in CALIBRATION_EQUAL + CALIBRATION_NOT_EQUAL]
            values = [s.logprobs[1] - s.logprobs[0] for s in self.service.score_choices(anchors, LABELS)]
            equal_mean = sum(values[: len(CALIBRATION_EQUAL)]) / len(CALIBRATION_EQUAL)
            not_equal_mean = sum(values[len(CALIBRATION_EQUAL) :]) / len(CALIBRATION_NOT_EQUAL)
            self.calibration = {"equal_log_odds": equal_mean, "not_equal_log_odds": not_equal_mean}
            if not_equal_mean <= equal_mean:
                logger.warning(
                    "reviewer %s does not tell the anchor pairs apart (mean log-odds %.2f vs %.2f); "
                    "using threshold 0.5",
                    self.service.backend.identity,
                    equal_mean,
                    not_equal_mean,
                )
                self.threshold = 0.5
            else:
                self.threshold = _sigmoid((equal_mean + not_equal_mean) / 2)
        return self.threshold

    @staticmethod
    def _from_scores(scores: ChoiceScores, threshold: float) -> Judgement:
        p_not_equal = _sigmoid(scores.logprobs[1] - scores.logprobs[0])
        if scores.details.get("undecided"):
            # Neither label among the server's top tokens: no judgement, so no reward.
            return Judgement(EQUAL, p_not_equal, "likelihood", undecided=True)
        return Judgement(NOT_EQUAL if p_not_equal >= threshold else EQUAL, p_not_equal, "likelihood")

    @staticmethod
    def _from_text(text: str) -> Judgement:
        label = parse_verdict(text)
        if label is None:
            return Judgement(EQUAL, 0.5, "generate", undecided=True)
        return Judgement(label, 1.0 if label == NOT_EQUAL else 0.0, "generate")
