"""The reviewer: is a rewritten instruction "Equal" to the one before it, or "Not Equal" (it added
information)? Decided by comparing the likelihood of the two labels, so there is no free-form
text to parse; servers without log-probabilities fall back to a generated verdict."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from teams_env.llm.base import Conversation, GenerationParams, ScoringUnsupported
from teams_env.llm.service import LLMService

EQUAL = "Equal"
NOT_EQUAL = "Not Equal"
LABELS = (EQUAL, NOT_EQUAL)

REVIEW_QUESTION = (
    "Compare the two instructions below. If the second one is the same request as the first, with the "
    "same constraints, requirements, depth and breadth, answer Equal. If the second one asks for more, "
    "less or something different, answer Not Equal."
)
FIRST_MARKER = "\n\nFirst instruction: "
SECOND_MARKER = "\n\nSecond instruction: "
ANSWER_LINE = "\n\nAnswer Equal or Not Equal."
# Two worked examples: a small model reads the task far better with them, and more of them made
# SmolLM2-135M worse (benchmarks/reviewer_quality.py). No system message: each model's own default.
DEMONSTRATIONS = (
    ("Write a haiku about autumn.", "Write a haiku about autumn.", EQUAL),
    (
        "List three uses of baking soda.",
        "List three uses of baking soda in the kitchen, each with a one-sentence example.",
        NOT_EQUAL,
    ),
)

logger = logging.getLogger(__name__)

ReviewMethod = Literal["auto", "likelihood", "generate"]

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
    """``"likelihood"`` or ``"generate"``."""
    undecided: bool = False
    """A generated verdict that named neither label; counted as Equal (no reward)."""

    @property
    def not_equal(self) -> bool:
        return self.verdict == NOT_EQUAL


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


class Reviewer:
    """Judges (before, after) instruction pairs in batches through one LLM service."""

    def __init__(
        self, service: LLMService, *, method: ReviewMethod = "auto", threshold: float | str = "auto"
    ) -> None:
        """``threshold``: the P(Not Equal) from which a rewrite counts as Not Equal, or ``"auto"``
        to calibrate it once on the anchor pairs (12 queries, cached like any other)."""
        if method not in ("auto", "likelihood", "generate"):
            raise ValueError(f"unknown review method '{method}'; choose auto, likelihood or generate")
        if threshold != "auto" and not (isinstance(threshold, (int, float)) and 0.0 < threshold < 1.0):
            raise ValueError(f"reviewer threshold must be 'auto' or in (0, 1), got {threshold!r}")
        self.service = service
        self.method: ReviewMethod = method
        self.threshold: float | None = None if threshold == "auto" else float(threshold)
        self.calibration: dict[str, float] = {}

    def judge(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
        if not pairs:
            return []
        conversations = [review_conversation(first, second) for first, second in pairs]
        if self.method in ("auto", "likelihood"):
            try:
                log_odds = self._log_odds(conversations)
                threshold = self.calibrated_threshold()
                return [self._from_log_odds(value, threshold) for value in log_odds]
            except ScoringUnsupported:
                if self.method == "likelihood":
                    raise
                self.method = "generate"  # this backend will not start giving log-probabilities
        answers = self.service.generate(
            conversations, GenerationParams(max_new_tokens=4, repetition_penalty=1.0)
        )
        return [self._from_text(answer.text) for answer in answers]

    def _log_odds(self, conversations: Sequence[Conversation]) -> list[float]:
        """log P(Not Equal) - log P(Equal) for each conversation."""
        return [s.logprobs[1] - s.logprobs[0] for s in self.service.score_choices(conversations, LABELS)]

    def calibrated_threshold(self) -> float:
        """The decision threshold; with ``"auto"``, the P(Not Equal) halfway (in log-odds) between
        the mean of the Equal anchors and the mean of the Not Equal anchors."""
        if self.threshold is None:
            anchors = [review_conversation(a, b) for a, b in CALIBRATION_EQUAL + CALIBRATION_NOT_EQUAL]
            values = self._log_odds(anchors)
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
    def _from_log_odds(log_odds: float, threshold: float) -> Judgement:
        p_not_equal = _sigmoid(log_odds)
        return Judgement(NOT_EQUAL if p_not_equal >= threshold else EQUAL, p_not_equal, "likelihood")

    @staticmethod
    def _from_text(text: str) -> Judgement:
        label = parse_verdict(text)
        if label is None:
            return Judgement(EQUAL, 0.5, "generate", undecided=True)
        return Judgement(label, 1.0 if label == NOT_EQUAL else 0.0, "generate")
