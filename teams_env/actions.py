"""The six rewrite actions of TeaMs-RL (in the style of Evol-Instruct), in our own words.

Each action is a method text (what the expert is asked to do; also what the sentence encoder
embeds to place the action in the continuous action space) and two worked demonstrations. Small
models answer an instruction instead of rewriting it unless they are shown how; the
demonstrations are sent as earlier chat turns, so every backend sees them the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from teams_env.llm.base import Conversation

REWRITER_SYSTEM = (
    "You rewrite instructions for an AI assistant. You never answer or carry out an instruction; "
    "you only write a new version of it. The new version must stay reasonable and answerable by a "
    "person, keep any table, code or other non-text part, and come without any explanation."
)
INSTRUCTION_MARKER = "Instruction: "


@dataclass(frozen=True)
class RewriteAction:
    name: str
    method: str
    demonstrations: tuple[tuple[str, str], ...]


ACTIONS: tuple[RewriteAction, ...] = (
    RewriteAction(
        name="breadth",
        method=(
            "Write a brand-new instruction that belongs to the same domain as the instruction below "
            "but is about a rarer topic. Make it about as long and as difficult."
        ),
        demonstrations=(
            (
                "Write a poem about the sea.",
                "Write a poem about the bioluminescent plankton that light up tropical bays at night.",
            ),
            (
                "Give three tips for saving money.",
                "Give three tips for negotiating a lower rent with a landlord.",
            ),
        ),
    ),
    RewriteAction(
        name="add_constraints",
        method=(
            "Rewrite the instruction below so that it adds exactly one more constraint or requirement, "
            "using 10 to 20 extra words."
        ),
        demonstrations=(
            (
                "Write a poem about the sea.",
                "Write a poem about the sea in exactly four rhyming stanzas that mention a lighthouse and an approaching storm.",
            ),
            (
                "Give three tips for saving money.",
                "Give three tips for saving money that a university student living alone on a part-time income could follow.",
            ),
        ),
    ),
    RewriteAction(
        name="deepening",
        method="Rewrite the instruction below so that it asks about its topic in greater depth and breadth.",
        demonstrations=(
            (
                "Why do leaves change colour in autumn?",
                "Why do leaves change colour in autumn, which pigments are involved, and how do temperature and "
                "daylight affect the timing and brightness of the colours?",
            ),
            (
                "What is inflation?",
                "What is inflation, what causes it, how do central banks try to control it, and who gains and "
                "who loses when prices rise quickly?",
            ),
        ),
    ),
    RewriteAction(
        name="concretizing",
        method="Rewrite the instruction below, replacing its general concepts with more specific ones.",
        demonstrations=(
            (
                "Describe a famous building.",
                "Describe the architecture of the Sagrada Familia in Barcelona and what makes its facades unusual.",
            ),
            (
                "Suggest a healthy breakfast.",
                "Suggest a breakfast with at least 20 grams of protein for a vegetarian who is training for a marathon.",
            ),
        ),
    ),
    RewriteAction(
        name="increase_reasoning",
        method=(
            "Rewrite the instruction below so that answering it explicitly requires several steps of reasoning."
        ),
        demonstrations=(
            (
                "Is 91 a prime number?",
                "Decide whether 91 is a prime number by testing its divisibility by each prime up to its square "
                "root, showing every step.",
            ),
            (
                "Which is heavier, a kilo of iron or a kilo of feathers?",
                "Compare a kilo of iron with a kilo of feathers: first explain what a kilogram measures, then "
                "reason step by step to decide which one is heavier.",
            ),
        ),
    ),
    RewriteAction(
        name="complicate_input",
        method=(
            "Rewrite the instruction below so that it comes with data to work on, in a format such as a "
            "table, code, JSON or a list."
        ),
        demonstrations=(
            (
                "Find the most expensive item.",
                "Find the most expensive item in this table and say how you found it:\n"
                "| item | price |\n|---|---|\n| lamp | 25 |\n| chair | 40 |\n| rug | 32 |",
            ),
            (
                "Explain what a sorting function does.",
                "Explain what this Python function returns for the input [3, 1, 2]:\n"
                "```python\ndef order(xs):\n    return sorted(xs)[::-1]\n```",
            ),
        ),
    ),
)
ACTION_NAMES: tuple[str, ...] = tuple(action.name for action in ACTIONS)

_LABEL_PREFIX = re.compile(
    r"^\s*(?:#+\s*)?(?:new|rewritten|created|improved|revised)?\s*(?:instruction|prompt)\s*#*\s*:\s*",
    re.IGNORECASE,
)


def _user_turn(action: RewriteAction, instruction: str) -> str:
    # Seed text is only ever data placed after the marker, never part of a format string.
    return action.method + "\n\n" + INSTRUCTION_MARKER + instruction


def rewrite_conversation(action: RewriteAction, instruction: str) -> Conversation:
    """The chat the expert answers to apply ``action`` to ``instruction``."""
    messages: Conversation = [{"role": "system", "content": REWRITER_SYSTEM}]
    for before, after in action.demonstrations:
        messages.append({"role": "user", "content": _user_turn(action, before)})
        messages.append({"role": "assistant", "content": after})
    messages.append({"role": "user", "content": _user_turn(action, instruction)})
    return messages


def parse_rewrite_conversation(conversation: Conversation) -> tuple[RewriteAction, str] | None:
    """The action and instruction of a chat built by :func:`rewrite_conversation` (else None)."""
    last = conversation[-1]["content"] if conversation else ""
    for action in ACTIONS:
        prefix = action.method + "\n\n" + INSTRUCTION_MARKER
        if last.startswith(prefix):
            return action, last[len(prefix) :]
    return None


def clean_rewrite(text: str) -> str:
    """The expert's reply as an instruction: no label such as "New instruction:", no wrapping quotes."""
    text = _LABEL_PREFIX.sub("", text.strip(), count=1).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text
