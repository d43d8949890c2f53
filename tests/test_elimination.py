"""Evol-Instruct's elimination rules on answers and rewrites."""

from __future__ import annotations

import pytest

from teams_env.actions import clean_rewrite
from teams_env.reward.elimination import Rule, answer_rule, is_empty_answer, is_sorry_answer, leaked_phrase


@pytest.mark.parametrize(
    ("answer", "rule"),
    [
        ("I'm sorry, but I cannot help with that.", Rule.SORRY_ANSWER),
        ("Sorry. " + "word " * 90, None),  # long answers may apologise
        ("... ! ?", Rule.EMPTY_ANSWER),
        ("It is what it is, and so on.", Rule.EMPTY_ANSWER),
        ("Paris is the capital of France.", None),
    ],
)
def test_answer_rules(answer, rule):
    assert answer_rule(answer) == rule


def test_rule_helpers():
    assert is_sorry_answer("SORRY") and not is_sorry_answer("A fine answer.")
    assert is_empty_answer("") and not is_empty_answer("42")


@pytest.mark.parametrize(
    ("rewrite", "phrase"),
    [
        ("Here is the #Rewritten Prompt#: do X", "rewritten prompt"),
        ("Using the given  prompt, explain X", "given prompt"),
        ("Explain how tides work.", None),
    ],
)
def test_leaks(rewrite, phrase):
    assert leaked_phrase(rewrite) == phrase


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  New instruction: Explain tides.  ", "Explain tides."),
        ('"Explain tides in two paragraphs."', "Explain tides in two paragraphs."),
        ("#Rewritten Prompt#: Explain tides.", "Explain tides."),
        ("Instruction: Explain tides.", "Explain tides."),
        ("Explain why instructions matter.", "Explain why instructions matter."),
    ],
)
def test_clean_rewrite(raw, clean):
    assert clean_rewrite(raw) == clean
