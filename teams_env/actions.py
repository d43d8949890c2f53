"""The six rewrite actions of TeaMs-RL (in the style of Evol-Instruct), in our own words.

Each action is a method text (what the expert is asked to do; also what the sentence encoder
embeds to place the action in the continuous action space) and two worked demonstrations. Small
models answer an instruction instead of rewriting it unless they are shown how; the
demonstrations are sent as earlier chat turns, so every backend sees them the same way.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from teams_env.llm.base import Conversation, split_prefill

REWRITER_SYSTEM = (
    "You rewrite instructions for an AI assistant. You never answer or carry out an instruction; "
    "you only write a new version of it. The new version must stay reasonable and answerable by a "
    "person, keep any table, code or other non-text part, and come without any explanation."
)
INSTRUCTION_MARKER = "Instruction: "


ReplyStart = Literal["instruction", "first_word"]


@dataclass(frozen=True)
class RewriteAction:
    name: str
    method: str
    demonstrations: tuple[tuple[str, str], ...]
    reply_starts_with: ReplyStart
    """What the expert's reply is made to begin with (the reply is prefilled): ``"instruction"``,
    the instruction itself, so an additive action only writes the addition and cannot answer
    instead; ``"first_word"``, its first word, so the reply is an instruction of the same kind.
    Measured on the embedded 135M expert: without it, most concretizing, reasoning and
    complicate-input "rewrites" were answers (benchmarks/expert_rewrites.py)."""
    max_new_tokens: int
    """Token limit of this action's reply (the env's ``max_new_tokens`` caps it further)."""
    stop: tuple[str, ...] = ("\n",)
    """One-paragraph actions stop at the end of the line: after it a small model rambles."""
    temperature: float = 0.0
    """Sampling temperature of this action where the env decodes greedily (0: greedy). Sampling
    stays reproducible: each request seeds its own generator. Greedy, the 135M expert copied the
    instruction in most breadth and many concretizing rewrites (benchmarks/expert_rewrites.py)."""
    top_p: float = 1.0
    repetition_penalty: float = 1.1


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
        reply_starts_with="first_word",
        max_new_tokens=64,
        temperature=0.8,
        top_p=0.95,
        repetition_penalty=1.3,
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
                "Give three tips for saving money on groceries that work without a car, a freezer or bulk buying.",
            ),
        ),
        reply_starts_with="instruction",
        max_new_tokens=48,
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
        reply_starts_with="instruction",
        max_new_tokens=64,
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
        reply_starts_with="first_word",
        max_new_tokens=64,
        temperature=0.7,
        top_p=0.95,
    ),
    RewriteAction(
        name="increase_reasoning",
        method=(
            "Rewrite the instruction below so that answering it explicitly requires several steps of reasoning."
        ),
        demonstrations=(
            (
                "Is 91 a prime number?",
                "Is 91 a prime number? Decide it by testing its divisibility by each prime up to its square "
                "root, showing every step.",
            ),
            (
                "Which is heavier, a kilo of iron or a kilo of feathers?",
                "Which is heavier, a kilo of iron or a kilo of feathers? First explain what a kilogram "
                "measures, then compare the two masses before giving the answer.",
            ),
        ),
        reply_starts_with="instruction",
        max_new_tokens=64,
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
                "Find the most expensive item. Use the table below.\n\n| item | price |\n|---|---|\n| lamp | 25 |\n"
                "| chair | 40 |\n| rug | 32 |",
            ),
            (
                "Explain what a sorting function does.",
                "Explain what a sorting function does. Use the code below.\n\n```python\ndef order(xs):\n"
                "    return sorted(xs)[::-1]\n```",
            ),
        ),
        reply_starts_with="instruction",
        max_new_tokens=160,
        stop=("\n\n\n",),
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


DATA_OPENERS = ("|", "```", "{")
"""How the data of a complicate-input rewrite begins: a Markdown table, a code block, JSON."""

DATA_REFERENCES = {"|": "Use the table below.", "```": "Use the code below.", "{": "Use the JSON below."}
"""The sentence that makes a complicate-input instruction refer to its data before giving it. Left
to itself the 135M expert appended data the instruction never mentioned (tables of placeholders
under a haiku request) and the reviewer paid for it (GitHub issue 18)."""


def reply_prefix(action: RewriteAction, instruction: str) -> str:
    """The text the expert's reply to ``action`` on ``instruction`` is made to begin with."""
    instruction = instruction.strip()
    if action.reply_starts_with == "first_word":
        return instruction.split(maxsplit=1)[0]
    if action.name == "complicate_input":
        # The data goes below the instruction, its first character given: a table, code or JSON,
        # chosen by the instruction's hash (stable across runs). Left to itself the 135M expert
        # wrote prose there in half the rewrites; with the opener, 1 in 10.
        digest = hashlib.sha256(instruction.encode("utf-8")).digest()[0]
        opener = DATA_OPENERS[digest % len(DATA_OPENERS)]
        sentence_end = "" if instruction[-1:] in ".!?" else "."
        return f"{instruction}{sentence_end} {DATA_REFERENCES[opener]}\n\n{opener}"
    if action.name == "increase_reasoning":
        return instruction  # the reasoning request follows the whole question
    # Additions go inside the sentence: "Write a poem about the sea" + " in four stanzas."
    return instruction[:-1] if instruction[-1:] in ".!?" else instruction


def rewrite_conversation(action: RewriteAction, instruction: str) -> Conversation:
    """The chat the expert answers to apply ``action`` to ``instruction``; it ends with the beginning
    of the reply (:func:`reply_prefix`), which the expert continues."""
    messages: Conversation = [{"role": "system", "content": REWRITER_SYSTEM}]
    for before, after in action.demonstrations:
        messages.append({"role": "user", "content": _user_turn(action, before)})
        messages.append({"role": "assistant", "content": after})
    messages.append({"role": "user", "content": _user_turn(action, instruction)})
    messages.append({"role": "assistant", "content": reply_prefix(action, instruction)})
    return messages


def specialist_conversation(action: RewriteAction, instruction: str) -> Conversation:
    """The chat a specialist expert (trained on demonstrations, ``teams-rl train-expert``) answers:
    the request alone. It needs no demonstrations, no prefilled reply and no system text (the
    request names the action; on 2 cores a training step's time is proportional to its tokens),
    and writes the whole new instruction."""
    return [{"role": "user", "content": _user_turn(action, instruction)}]


def parse_rewrite_conversation(conversation: Conversation) -> tuple[RewriteAction, str] | None:
    """The action and instruction of a chat built by :func:`rewrite_conversation` (else None)."""
    history, _ = split_prefill(conversation)
    last = history[-1]["content"] if history else ""
    for action in ACTIONS:
        prefix = action.method + "\n\n" + INSTRUCTION_MARKER
        if last.startswith(prefix):
            return action, last[len(prefix) :]
    return None


def first_data_block(before: str, rewrite: str) -> str:
    """A complicate-input rewrite of ``before`` cut after the first data block it adds: the
    instruction, then one table, code block or JSON value. The 135M expert went on with a second
    copy of the table, more code or prose; a block left open (cut off by the token limit) is kept
    whole for the validity rules to judge. Data ``before`` already had is left alone."""
    start = rewrite.find("\n\n", len(before) if rewrite.startswith(before) else 0)
    if start < 0:
        return rewrite
    instruction, gap, data = rewrite[:start], "\n\n", rewrite[start + 2 :]
    lines = data.split("\n")
    if not lines[0]:
        return rewrite
    if lines[0].startswith("|"):
        end = next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))
    elif lines[0].startswith("```"):
        end = next((i + 1 for i, line in enumerate(lines[1:], start=1) if line.strip() == "```"), len(lines))
    elif lines[0].startswith("{"):
        end = _json_end(lines)
    else:
        return rewrite
    return instruction + gap + "\n".join(lines[:end]).rstrip()


def _json_end(lines: list[str]) -> int:
    """How many lines the JSON value opening ``lines`` spans (all of them if it never closes)."""
    depth, quoted, escaped = 0, False, False
    for number, line in enumerate(lines, start=1):
        for char in line:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = quoted
            elif char == '"':
                quoted = not quoted
            elif not quoted and char in "{[":
                depth += 1
            elif not quoted and char in "}]":
                depth -= 1
                if depth == 0:
                    return number
    return len(lines)


def clean_rewrite(text: str) -> str:
    """The expert's reply as an instruction: no label such as "New instruction:", no wrapping quotes."""
    text = _LABEL_PREFIX.sub("", text.strip(), count=1).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text
