"""What one environment step asks of the models, in batches: the expert rewrites, the reviewer
judges. Shared by the single environment (batches of one) and the vector environment (one batch
for all sub-environments)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from teams_env.actions import ACTIONS, clean_rewrite, rewrite_conversation
from teams_env.llm.base import GenerationParams
from teams_env.llm.service import LLMService
from teams_env.reviewer import EQUAL, Judgement, Reviewer


@dataclass(frozen=True)
class Rewrite:
    text: str
    """The new instruction (the previous one when the rewrite failed)."""
    failure: str | None = None
    """``"empty"`` (nothing usable came back) or ``"unchanged"`` (same text as before)."""
    cut_off: bool = False
    """The expert hit ``max_new_tokens``: the rewrite may end mid-sentence."""


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


class RewriteEngine:
    """The expert and the reviewer of the instruction-rewriting MDP."""

    def __init__(self, expert: LLMService, reviewer: Reviewer, params: GenerationParams) -> None:
        self.expert = expert
        self.reviewer = reviewer
        self.params = params

    def rewrite(self, requests: Sequence[tuple[str, int]]) -> list[Rewrite]:
        """Apply action ``a`` to instruction ``x`` for each ``(x, a)``, in one batched expert call."""
        conversations = [
            rewrite_conversation(ACTIONS[action], instruction) for instruction, action in requests
        ]
        completions = self.expert.generate(conversations, self.params) if conversations else []
        results = []
        for (before, _), completion in zip(requests, completions):
            text = clean_rewrite(completion.text)
            cut_off = completion.finish_reason == "length"
            if not text:
                results.append(Rewrite(before, "empty", cut_off))
            elif normalise(text) == normalise(before):
                results.append(Rewrite(before, "unchanged", cut_off))
            else:
                results.append(Rewrite(text, None, cut_off))
        return results

    def judge(self, pairs: Sequence[tuple[str, Rewrite]]) -> list[Judgement]:
        """The reviewer's verdict on each (before, rewrite); failed rewrites are Equal without a query."""
        asked = [i for i, (_, rewrite) in enumerate(pairs) if rewrite.failure is None]
        verdicts = dict(zip(asked, self.reviewer.judge([(pairs[i][0], pairs[i][1].text) for i in asked])))
        return [verdicts.get(i, Judgement(EQUAL, 0.0, "unchanged")) for i in range(len(pairs))]
