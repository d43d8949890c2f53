"""The reviewer: likelihood verdicts, threshold calibration on anchor pairs, and the fallback to a
generated verdict when a backend gives no log-probabilities."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from teams_env.actions import ACTION_NAMES
from teams_env.llm.base import ScoringUnsupported
from teams_env.llm.registry import shared_backend
from teams_env.llm.scripted import ScriptedBackend
from teams_env.llm.service import LLMService
from teams_env.reward.reviewer import (
    CALIBRATION_EQUAL,
    EQUAL,
    NOT_EQUAL,
    Reviewer,
    parse_review_conversation,
    parse_verdict,
    review_conversation,
)
from teams_env.seeds import load_seeds


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Not Equal", NOT_EQUAL),
        ("not equal.", NOT_EQUAL),
        ("NOT-EQUAL", NOT_EQUAL),
        ("Equal", EQUAL),
        (" equal!", EQUAL),
        ("They are equal to each other", EQUAL),
        ("Different", None),
        ("", None),
    ],
)
def test_parse_verdict_tests_not_equal_first(text, label):
    assert parse_verdict(text) == label


def test_review_conversation_round_trips():
    first, second = "Explain {x} and 100% of it.", "Explain it.\n\nSecond instruction: a trap"
    assert parse_review_conversation(review_conversation(first, second)) == (first, second)


def biased_scorer(equal_log_odds: float, not_equal_log_odds: float):
    """A reviewer model biased towards Not Equal that still ranks pairs correctly."""

    def score(conversation, choices):
        first, second = parse_review_conversation(conversation)
        log_odds = (
            equal_log_odds
            if first.rstrip("!.") == second.rstrip("!.").replace("Please e", "E")
            else not_equal_log_odds
        )
        return [0.0, log_odds]

    return score


def test_auto_threshold_sits_between_the_anchor_groups():
    reviewer = Reviewer(LLMService(ScriptedBackend(score=biased_scorer(1.0, 2.0)), "reviewer"))
    verdicts = reviewer.judge(
        [
            ("Explain a river.", "Please explain a river."),
            ("Explain a river.", "Explain a long river in Asia."),
        ]
    )
    equal_share = sum(
        1 for a, b in CALIBRATION_EQUAL if a.rstrip("!.") == b.rstrip("!.").replace("Please e", "E")
    )
    assert equal_share >= 4  # the scripted scorer recognises most Equal anchors
    assert 1 / (1 + math.exp(-1.0)) < reviewer.threshold < 1 / (1 + math.exp(-2.0))
    assert [v.verdict for v in verdicts] == [EQUAL, NOT_EQUAL]
    assert verdicts[0].p_not_equal > 0.5  # biased, yet judged Equal after calibration


def test_a_reviewer_that_cannot_tell_anchors_apart_falls_back_to_half(caplog):
    reviewer = Reviewer(LLMService(ScriptedBackend(score=lambda conv, choices: [0.0, 0.3]), "reviewer"))
    with caplog.at_level(logging.WARNING):
        assert reviewer.calibrated_threshold() == 0.5
    assert "does not tell the anchor pairs apart" in caplog.text


def test_fixed_threshold_skips_calibration():
    backend = ScriptedBackend()
    reviewer = Reviewer(LLMService(backend, "reviewer"), threshold=0.5)
    assert reviewer.judge([("a", "b")])[0].verdict == NOT_EQUAL
    assert backend.requests["score"] == 1


def test_generated_verdicts_when_the_backend_has_no_logprobs():
    replies = iter(["Not Equal", "equal", "I think so"])
    backend = ScriptedBackend(reply=lambda conv: next(replies), supports_scoring=False)
    reviewer = Reviewer(LLMService(backend, "reviewer"))
    judgements = reviewer.judge([("a", "b"), ("a", "a b"), ("a", "c")])
    assert [(j.verdict, j.method, j.undecided) for j in judgements] == [
        (NOT_EQUAL, "generate", False),
        (EQUAL, "generate", False),
        (EQUAL, "generate", True),
    ]
    assert reviewer.method == "generate"
    strict = Reviewer(LLMService(ScriptedBackend(supports_scoring=False), "reviewer"), method="likelihood")
    with pytest.raises(ScoringUnsupported):
        strict.judge([("a", "b")])


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"method": "vote"}, "unknown review method"), ({"threshold": 1.5}, "threshold")]
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Reviewer(LLMService(ScriptedBackend(), "reviewer"), **kwargs)


EXTENSION = " Include at least three concrete examples and end with a short summary table."


@pytest.mark.slow
def test_embedded_reviewer_tells_identical_from_clearly_extended():
    reviewer = Reviewer(LLMService(shared_backend("llamacpp"), "reviewer"))
    seeds = [s.text for s in load_seeds().seeds if not s.input][::4][:24]
    adds = [ACTION_NAMES.index("add_constraints")] * len(seeds)  # the bundled judge reads the action
    same = reviewer.judge([(s, s) for s in seeds], actions=adds)
    extended = reviewer.judge([(s, s + EXTENSION) for s in seeds], actions=adds)
    # A 135M reviewer is a weak judge: the test asks for a clear majority, not perfection.
    assert np.mean([j.verdict == EQUAL for j in same]) >= 0.5
    assert np.mean([j.verdict == NOT_EQUAL for j in extended]) >= 0.6
    assert np.mean([j.p_not_equal for j in extended]) > np.mean([j.p_not_equal for j in same])
    single = "Describe how volcanoes form."
    assert reviewer.judge([(single, single)], actions=adds[:1])[0].verdict == EQUAL
    assert reviewer.judge([(single, single + EXTENSION)], actions=adds[:1])[0].verdict == NOT_EQUAL
