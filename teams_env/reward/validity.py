"""Is a rewrite an instruction a person would answer? Cheap rules catch what needs no model (a copy,
nothing usable, a reply cut off at the token limit, a loop of repeated words, prompt words leaked,
and the junk data the reviewer used to pay for: a repeated block, a phrase copied from an action's
demonstration, cut-off or malformed code or JSON, a table of placeholders; :mod:`teams_env.reward.junk_rules`), and
the rules a review head names (template reasoning steps, a reference to input the rewrite dropped);
the review head's P(valid) judges the rest (an answer instead of a rewrite, a broken sentence).

An invalid rewrite earns no reward in the env and is dropped by ``generate`` (elimination rule 5).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import Enum

from teams_env.reward.elimination import leaked_phrase
from teams_env.reward.junk_rules import JUDGE_DETECTORS, junk_reasons


class InvalidReason(str, Enum):
    EMPTY = "empty"
    COPY = "copy"
    CUT_OFF = "cut_off"
    REPETITIVE = "repetitive"
    LEAKED_PROMPT_WORDS = "leaked_prompt_words"
    NOT_AN_INSTRUCTION = "not_an_instruction"
    REPEATED_BLOCK = "repeated_block"
    DEMONSTRATION_LEAK = "demonstration_leak"
    MALFORMED_DATA = "malformed_data"
    PLACEHOLDER_TABLE = "placeholder_table"
    FILLER_STEPS = "filler_steps"
    MISSING_INPUT = "missing_input"


_WORD = re.compile(r"[a-z0-9']+")
MAX_REPEATED_SHARE = 0.5
"""A text at least half of whose word trigrams are repeats is a loop, not an instruction."""


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def repeated_share(text: str, n: int = 3) -> float:
    """Share of the word n-grams of ``text`` that already occurred earlier in it."""
    words = _words(text)
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if len(grams) < 4:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def rule_violation(
    before: str, after: str, *, cut_off: bool = False, judge_rules: Sequence[str] = ()
) -> InvalidReason | None:
    """The first rule a rewrite breaks, else None (the model then decides). ``judge_rules``: the
    names of the :data:`~teams_env.reward.junk_rules.JUDGE_DETECTORS` the review head applies."""
    if not _words(after):
        return InvalidReason.EMPTY
    if _words(after) == _words(before):
        return InvalidReason.COPY
    if cut_off:
        return InvalidReason.CUT_OFF
    if repeated_share(after) >= MAX_REPEATED_SHARE:
        return InvalidReason.REPETITIVE
    if leaked_phrase(after) is not None:
        return InvalidReason.LEAKED_PROMPT_WORDS
    # Junk the rewrite brought in (junk the instruction already had is not the rewrite's doing).
    junk = junk_reasons(before, after)
    if junk:
        return InvalidReason(next(iter(junk)))
    return next((InvalidReason(name) for name in judge_rules if JUDGE_DETECTORS[name](before, after)), None)
