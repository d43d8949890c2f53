"""The reward, in one place: what a rewrite is paid, from the reviewer's verdict, the validity rules
and the leak rule. The live env pays by it as it steps; the replay env pays by it from what a pack
recorded of the same step. No model is imported here.

A rewrite is **rewarded** when the reviewer says it is "Not Equal" to the instruction before it (it
added information) and it is a valid instruction (:mod:`teams_env.reward.validity`). It earns 1 if
rewarded, else 0, minus ``leak_penalty`` when it leaks words of the rewrite prompt
(:func:`teams_env.reward.elimination.leaked_phrase`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EQUAL = "Equal"
NOT_EQUAL = "Not Equal"
LABELS = (EQUAL, NOT_EQUAL)


def step_reward(rewarded: bool, leaked: str | None, leak_penalty: float) -> float:
    """What one rewrite earns."""
    return (1.0 if rewarded else 0.0) - (leak_penalty if leaked else 0.0)


def rewarded_in(info: Mapping[str, Any]) -> bool:
    """Whether the step an env's ``info`` describes was rewarded: Not Equal, valid and, where the
    judge has a GOOD head, called GOOD (a pack recorded before the validity rules has no ``valid``,
    one recorded before GOOD heads no ``good``: what they had was paid)."""
    return info["verdict"] == NOT_EQUAL and bool(info.get("valid", True)) and info.get("good") is not False


def info_reward(info: Mapping[str, Any], leak_penalty: float) -> float:
    """:func:`step_reward` of the step an env's ``info`` describes (what a replay env pays)."""
    return step_reward(rewarded_in(info), info.get("leaked_phrase"), leak_penalty)


def unpaid_reason(info: Mapping[str, Any]) -> str | None:
    """Why a step's rewrite earned no reward (or a penalty), from its ``info``; None when it was paid
    in full."""
    if info.get("reward", 0.0) > 0 and not info.get("leaked_phrase"):
        return None
    if info.get("rewrite_failure"):
        return f"the rewrite failed: {info['rewrite_failure']}"
    if not info.get("valid", True):
        return f"not a valid instruction: {info.get('invalid_reason')}"
    if info.get("verdict") != NOT_EQUAL:
        return "the reviewer found it Equal: no new information"
    if info.get("good") is False:
        return f"the judge does not call it GOOD for its action (P(GOOD) {info.get('p_good', 0.0):.2f})"
    if info.get("leaked_phrase"):
        return f"leaks prompt words: {info['leaked_phrase']!r}"
    return "this reward pays nothing for it"
