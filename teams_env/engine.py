"""What one environment step asks of the models, in batches: the expert rewrites, the reviewer
judges. Shared by the single environment (batches of one) and the vector environment (one batch
for all sub-environments)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from teams_env.actions import (
    ACTIONS,
    clean_rewrite,
    first_data_block,
    rewrite_conversation,
    specialist_conversation,
)
from teams_env.llm.base import Completion, GenerationParams
from teams_env.llm.service import LLMService
from teams_env.reward.reviewer import EQUAL, Judgement, Reviewer
from teams_env.reward.validity import InvalidReason


@dataclass(frozen=True)
class Rewrite:
    text: str
    """The new instruction (the previous one when the rewrite failed)."""
    failure: str | None = None
    """``"empty"`` (nothing usable came back) or ``"unchanged"`` (same text as before)."""
    cut_off: bool = False
    """The expert hit ``max_new_tokens``: the rewrite may end mid-sentence."""


def normalise(text: str) -> str:
    """Lowercase, single spaces, no closing punctuation: "Explain X." and "explain x" are one text."""
    return " ".join(text.lower().split()).rstrip(".!?;: ")


def _with_prefix(prefix: str, answer: Completion) -> Completion:
    """The whole rewrite of a prefilled reply: its beginning plus what the expert wrote. Nothing
    written is an empty rewrite; a server that ignored the prefill and wrote the whole reply (it
    starts with the prefix) is taken as it is."""
    if not answer.text.strip():
        return replace(answer, text="")
    if answer.text.lstrip().startswith(prefix.strip()):
        return answer
    return replace(answer, text=prefix + answer.text)


class RewriteEngine:
    """The expert and the reviewer of the instruction-rewriting MDP."""

    def __init__(self, expert: LLMService, reviewer: Reviewer, params: GenerationParams) -> None:
        self.expert = expert
        self.reviewer = reviewer
        self.params = params

    @property
    def specialist(self) -> bool:
        """The expert was trained for the rewrites: it gets the request alone and writes it all."""
        return self.expert.backend.specialist

    def rewrite(self, requests: Sequence[tuple[str, int]]) -> list[Rewrite]:
        """Apply action ``a`` to instruction ``x`` for each ``(x, a)``, in one batched expert call."""
        # One batched call; each action has its own token limit and stops.
        conversation = specialist_conversation if self.specialist else rewrite_conversation
        conversations = [conversation(ACTIONS[a], instruction) for instruction, a in requests]
        answers = (
            self.expert.generate(conversations, [self.action_params(a) for _, a in requests])
            if requests
            else []
        )
        # A specialist's reply is the whole rewrite; a prompted expert's continues a prefilled start.
        completions = (
            list(answers)
            if self.specialist
            else [_with_prefix(c[-1]["content"], answer) for c, answer in zip(conversations, answers)]
        )
        results = []
        for (before, action), completion in zip(requests, completions):
            text = clean_rewrite(completion.text)
            cut_off = completion.finish_reason == "length"
            if ACTIONS[action].name == "complicate_input":
                whole, text = text, first_data_block(before, text)
                cut_off = cut_off and text == whole  # a limit hit after the first block cut nothing kept
            if not text:
                results.append(Rewrite(before, "empty", cut_off))
            elif normalise(text) == normalise(before):
                results.append(Rewrite(before, "unchanged", cut_off))
            else:
                results.append(Rewrite(text, None, cut_off))
        return results

    def action_params(self, action: int) -> GenerationParams:
        """The expert's decoding for ``action``: its own token limit (capped by the env's) and stops.
        A specialist decodes as it was trained: greedy (unless the env samples), no repetition
        penalty (a kept table repeats its separators), to its end of turn, within the env's limit
        (it writes the whole instruction, not only an addition)."""
        if self.specialist:
            return replace(self.params, repetition_penalty=1.0)
        spec = ACTIONS[action]
        params = replace(
            self.params,
            max_new_tokens=min(self.params.max_new_tokens, spec.max_new_tokens),
            stop=tuple(dict.fromkeys(self.params.stop + spec.stop)),
        )
        if self.params.temperature > 0:  # the env asked for sampling: its settings rule
            return params
        return replace(
            params,
            temperature=spec.temperature,
            top_p=spec.top_p,
            repetition_penalty=spec.repetition_penalty,
        )

    def judge(self, pairs: Sequence[tuple[str, Rewrite]], actions: Sequence[int]) -> list[Judgement]:
        """The reviewer's verdict on each (before, rewrite) of ``actions``; failed rewrites are
        Equal and invalid without a query."""
        asked = [i for i, (_, rewrite) in enumerate(pairs) if rewrite.failure is None]
        verdicts = dict(
            zip(
                asked,
                self.reviewer.judge(
                    [(pairs[i][0], pairs[i][1].text) for i in asked],
                    cut_off=[pairs[i][1].cut_off for i in asked],
                    actions=[actions[i] for i in asked],
                ),
            )
        )
        return [
            verdicts.get(i) or Judgement(EQUAL, 0.0, "rule", invalid_reason=_FAILURE_REASON[rewrite.failure])
            for i, (_, rewrite) in enumerate(pairs)
        ]


_FAILURE_REASON = {"empty": InvalidReason.EMPTY.value, "unchanged": InvalidReason.COPY.value, None: None}
