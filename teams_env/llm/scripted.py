"""A deterministic stand-in LLM for fast unit tests and for timing the environment's own overhead.

It understands the environment's prompts: a rewrite request gets the instruction back with an
action-specific clause appended, a review request scores "Not Equal" high exactly when the two
instructions differ, and anything else (the responder) gets a fixed-length answer. Tests pass
their own ``reply`` / ``score`` functions to script other behaviour. Never a replacement for the
real-model tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from teams_env.actions import parse_rewrite_conversation
from teams_env.llm.base import (
    ChoiceScores,
    Completion,
    Conversation,
    LLMBackend,
    Params,
    ScoringUnsupported,
    per_request,
    split_prefill,
)
from teams_env.reward.reviewer import EQUAL, NOT_EQUAL, parse_review_conversation

ACTION_CLAUSES = {
    "breadth": "Focus on a rarer case of it.",
    "add_constraints": "Answer in at most five sentences.",
    "deepening": "Explain the causes and the consequences.",
    "concretizing": "Use one specific real-world example.",
    "increase_reasoning": "Reason step by step.",
    "complicate_input": "[3, 1, 2]",
}
SCRIPTED_DATA = {
    "|": "| data |\n|---|\n| [3, 1, 2] |",
    "```": "```python\ndata = [3, 1, 2]\n```",
    "{": '{"data": [3, 1, 2]}',
}
"""The well-formed block the scripted expert completes, after each complicate-input opener."""

ReplyFn = Callable[[Conversation], str]
ScoreFn = Callable[[Conversation, Sequence[str]], Sequence[float]]


def scripted_reply(conversation: Conversation) -> str:
    rewrite = parse_rewrite_conversation(conversation)
    if rewrite is not None:
        action, instruction = rewrite
        _, prefill = split_prefill(conversation)
        opener = next((o for o in SCRIPTED_DATA if prefill.endswith("\n\n" + o)), None)
        if action.name == "complicate_input" and opener is not None:
            return SCRIPTED_DATA[opener][len(opener) :]  # the block's rest, after the prefilled opener
        full = f"{instruction} {ACTION_CLAUSES[action.name]}"
        return full[len(prefill) :] if full.startswith(prefill) else full
    review = parse_review_conversation(conversation)
    if review is not None:
        first, second = review
        return EQUAL if first == second else NOT_EQUAL
    question = conversation[-1]["content"] if conversation else ""
    return (
        f"Here is a careful answer to the request '{question[:60]}'. First, it names the goal. Then it "
        "lists the main points in order, gives one worked example, and ends with a short summary that "
        "a reader can check against the request."
    )


def scripted_score(conversation: Conversation, choices: Sequence[str]) -> list[float]:
    """Log-likelihoods favouring the reply :func:`scripted_reply` would give (0.9 vs the rest)."""
    preferred = scripted_reply(conversation)
    rest = math.log(0.1 / max(1, len(choices) - 1))
    return [math.log(0.9) if choice == preferred else rest for choice in choices]


def novelty_score(conversation: Conversation, choices: Sequence[str]) -> list[float]:
    """A reviewer that rewards action diversity: "Not Equal" (0.9 vs 0.1) exactly when the action just
    applied (the clause ending the new text) was not applied before in the trajectory (its clause is
    not in the old text). Uniform random actions then earn sum_{k<6} (5/6)^k = 3.99 per episode and
    the best policy 6, so learning shows whatever the quality of a real LLM."""
    pair = parse_review_conversation(conversation)
    if pair is None:
        raise ValueError("novelty_score only answers review conversations")
    before, after = pair
    clause = max(ACTION_CLAUSES.values(), key=after.rfind)  # the action applied last
    preferred = EQUAL if clause in before else NOT_EQUAL
    return [math.log(0.9) if choice == preferred else math.log(0.1) for choice in choices]


class ScriptedBackend(LLMBackend):
    kind = "scripted"

    def __init__(
        self,
        reply: ReplyFn | None = None,
        score: ScoreFn | None = None,
        *,
        supports_scoring: bool = True,
        name: str = "scripted",
        delay: float = 0.0,
    ) -> None:
        """``delay``: seconds each batched call takes (for tests that interrupt a run)."""
        self.reply = reply or scripted_reply
        self.score = score or scripted_score
        self.supports_scoring = supports_scoring
        self._name = name
        self.delay = delay
        self.requests = {"generate": 0, "score": 0}
        """Requests that reached this backend (cache hits never do)."""
        self.batches: dict[str, list[int]] = {"generate": [], "score": []}
        """The size of each batched call, for tests of batching."""

    @property
    def model_id(self) -> str:
        return self._name

    def generate(self, conversations: Sequence[Conversation], params: Params) -> list[Completion]:
        time.sleep(self.delay)
        self.requests["generate"] += len(conversations)
        self.batches["generate"].append(len(conversations))
        out = []
        for conversation, own in zip(conversations, per_request(params, len(conversations))):
            words = self.reply(conversation).split(" ")
            cut = len(words) > own.max_new_tokens
            text = " ".join(words[: own.max_new_tokens])
            out.append(
                Completion(
                    text,
                    _tokens(conversation),
                    min(len(words), own.max_new_tokens),
                    "length" if cut else "stop",
                )
            )
        return out

    def score_choices(
        self, conversations: Sequence[Conversation], choices: Sequence[str]
    ) -> list[ChoiceScores]:
        if not self.supports_scoring:
            raise ScoringUnsupported("this scripted backend gives no log-probabilities")
        time.sleep(self.delay)
        self.requests["score"] += len(conversations)
        self.batches["score"].append(len(conversations))
        return [ChoiceScores(tuple(self.score(c, choices)), _tokens(c)) for c in conversations]


def _tokens(conversation: Conversation) -> int:
    """A stand-in token count: words in the conversation."""
    return sum(len(m["content"].split()) for m in conversation)
