"""Evol-Instruct's elimination rules: a failed evolution is dropped from the dataset.

1. ``no_new_information``: the reviewer says the rewrite is Equal to the instruction before it.
2. ``sorry_answer``: the answer is short (under 80 words) and contains "sorry".
3. ``empty_answer``: the answer is only punctuation and stop words.
4. ``leaked_prompt_words``: the rewrite copies words of the rewrite prompt ("given prompt", ...).
5. ``invalid_instruction`` (ours): the rewrite is no instruction a person would answer: an answer
   instead of a rewrite, a loop, a reply cut off at the token limit (:mod:`teams_env.reward.validity`).
6. ``not_good`` (ours): the judge's GOOD head, where it has one, says the rewrite is no good
   evolution for its action (what the env does not pay for).
"""

from __future__ import annotations

import re
from enum import Enum


class Rule(str, Enum):
    NO_NEW_INFORMATION = "no_new_information"
    SORRY_ANSWER = "sorry_answer"
    EMPTY_ANSWER = "empty_answer"
    LEAKED_PROMPT_WORDS = "leaked_prompt_words"
    INVALID_INSTRUCTION = "invalid_instruction"
    NOT_GOOD = "not_good"


# The phrases of Evol-Instruct's prompts and of ours (teams_env.actions) that a rewrite must not echo.
LEAK_PHRASES = (
    "given prompt",
    "rewritten prompt",
    "created prompt",
    "#given prompt#",
    "#rewritten prompt#",
    "#created prompt#",
    "given instruction",
    "rewritten instruction",
    "new instruction",
    "original instruction",
    "instruction below",
    "instruction above",
    "new version of the instruction",
)

SORRY_WORD_LIMIT = 80

STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    ok okay yes
    """.split()
)


def leaked_phrase(rewrite: str) -> str | None:
    """The first prompt phrase the rewrite copies (rule 4), else None."""
    lowered = " ".join(rewrite.lower().split())
    return next((phrase for phrase in LEAK_PHRASES if phrase in lowered), None)


def is_sorry_answer(answer: str) -> bool:
    """Rule 2: fewer than 80 words and contains "sorry" (the instruction was too hard or broken)."""
    return len(answer.split()) < SORRY_WORD_LIMIT and "sorry" in answer.lower()


def is_empty_answer(answer: str) -> bool:
    """Rule 3: nothing but punctuation and stop words."""
    return all(word in STOP_WORDS for word in re.findall(r"[a-z0-9']+", answer.lower()))


def answer_rule(answer: str) -> Rule | None:
    """The first answer rule (2, then 3) that drops an answer, else None."""
    if is_sorry_answer(answer):
        return Rule.SORRY_ANSWER
    if is_empty_answer(answer):
        return Rule.EMPTY_ANSWER
    return None
