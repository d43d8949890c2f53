"""The one small interface every LLM backend implements: batched chat generation and batched
scoring of fixed choices."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

Message = dict[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": str}``."""

Conversation = list[Message]


class LLMError(RuntimeError):
    """An LLM backend failed in a way the caller should report, not retry."""


class ScoringUnsupported(LLMError):
    """The backend cannot score choices (e.g. a server that returns no log-probabilities)."""


class StatesUnsupported(LLMError):
    """The backend cannot show the model's hidden states (e.g. a chat server)."""


class PartialBatchError(LLMError):
    """Some requests of a batch failed for good while others were answered.

    ``answered`` maps the position of each answered request in the batch to its result, so that
    the caller keeps (and caches) what was paid for before it reports the failure.
    """

    def __init__(self, message: str, answered: Mapping[int, Completion | ChoiceScores]) -> None:
        super().__init__(message)
        self.answered = answered


@dataclass(frozen=True)
class GenerationParams:
    """Decoding parameters. Greedy by default, so the same request always gives the same text."""

    max_new_tokens: int = 160
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.1
    seed: int = 0
    """Sampling seed; each request derives its own generator from it and the request itself, so a
    sampled answer does not depend on which other requests shared its batch."""
    stop: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def request_seed(self, conversation: Conversation) -> int:
        """The per-request sampling seed (stable across processes and batch compositions)."""
        digest = hashlib.sha256(
            json.dumps([self.seed, conversation], sort_keys=True).encode("utf-8")
        ).digest()
        return int.from_bytes(digest[:4], "little")


@dataclass(frozen=True)
class Completion:
    """One generated answer with its token counts."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"


@dataclass(frozen=True)
class ChoiceScores:
    """Log-likelihood of each fixed choice as the assistant's reply to one conversation."""

    logprobs: tuple[float, ...]
    prompt_tokens: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def split_prefill(conversation: Conversation) -> tuple[Conversation, str]:
    """(the chat to answer, the beginning of the reply): a conversation that ends with an assistant
    message asks the model to continue that message, and the completion is only what follows it."""
    if conversation and conversation[-1]["role"] == "assistant":
        return conversation[:-1], conversation[-1]["content"]
    return conversation, ""


Params = GenerationParams | Sequence[GenerationParams]
"""One set of decoding parameters for a whole batch, or one per request."""


def per_request(params: Params, count: int) -> list[GenerationParams]:
    """``params`` as one :class:`GenerationParams` per request."""
    if isinstance(params, GenerationParams):
        return [params] * count
    params = list(params)
    if len(params) != count:
        raise ValueError(f"{len(params)} sets of generation parameters for {count} requests")
    return params


def in_batches(
    items: Sequence[Conversation],
    params: Params,
    size: int,
    run: Callable[[Sequence[Conversation], list[GenerationParams]], list[Completion]],
) -> list[Completion]:
    """``run`` over consecutive slices of at most ``size`` requests (with their parameters), results
    in order."""
    every = per_request(params, len(items))
    results: list[Completion] = []
    for start in range(0, len(items), size):
        results.extend(run(items[start : start + size], every[start : start + size]))
    return results


class LLMBackend(ABC):
    """A chat model that generates answers and scores fixed choices, both in batches.

    Implementations keep no per-request state that would make a batched call differ from the
    same requests sent one by one (greedy decoding gives the same text either way).
    """

    kind: ClassVar[str]
    """The backend's name in a spec string (``"llamacpp"``, ``"hf"``, ...)."""

    specialist: ClassVar[bool] = False
    """A model trained for the rewrites (``teams-rl train-expert``): as the expert it is asked with
    the request alone (:func:`teams_env.actions.specialist_conversation`), not with demonstrations
    and a prefilled reply."""

    @property
    @abstractmethod
    def model_id(self) -> str:
        """A stable name of the model, part of every cache key (never a secret)."""

    @property
    def identity(self) -> str:
        """What distinguishes this backend's answers from another's in the cache."""
        return f"{self.kind}:{self.model_id}"

    @abstractmethod
    def generate(self, conversations: Sequence[Conversation], params: Params) -> list[Completion]:
        """Answer each conversation (one completion each, in order); ``params`` for all of them or
        one per conversation (requests with different limits still share one batch)."""

    @abstractmethod
    def score_choices(
        self, conversations: Sequence[Conversation], choices: Sequence[str]
    ) -> list[ChoiceScores]:
        """Log-likelihood of each choice as the assistant's whole reply to each conversation.

        Raises :class:`ScoringUnsupported` where the backend cannot see log-probabilities.
        """

    def last_hidden_states(self, conversations: Sequence[Conversation]) -> list[np.ndarray]:
        """The model's final hidden state (after its last norm) at the last token of each rendered
        conversation: where a conversation ends with an assistant message, the last token of that
        reply, which is what a reward model reads. Local backends only.

        Raises :class:`StatesUnsupported` where the backend cannot see hidden states.
        """
        raise StatesUnsupported(f"backend '{self.kind}' cannot show hidden states")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release model memory or connections."""

    def __enter__(self) -> LLMBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
