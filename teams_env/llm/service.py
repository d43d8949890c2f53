"""Every LLM call goes through here: one cache, one accounting, one role per service."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np

from teams_env.llm.accounting import QueryLedger, RoleUsage
from teams_env.llm.base import (
    ChoiceScores,
    Completion,
    Conversation,
    LLMBackend,
    Params,
    PartialBatchError,
    per_request,
)
from teams_env.llm.cache import ResponseCache, cache_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _States:
    """A hidden-state vector as the cache stores it."""

    state: list[float]
    prompt_tokens: int = 0


Result = TypeVar("Result", Completion, ChoiceScores, _States)


class LLMService:
    """A backend seen through the shared cache and ledger, on behalf of one role.

    Only cache misses reach the backend, in one batched call; the ledger counts those as queries
    and the rest as cache hits.
    """

    def __init__(
        self,
        backend: LLMBackend,
        role: str,
        ledger: QueryLedger | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self.backend = backend
        self.role = role
        self.ledger = ledger if ledger is not None else QueryLedger()
        self.cache = cache

    def generate(self, conversations: Sequence[Conversation], params: Params) -> list[Completion]:
        every = per_request(params, len(conversations))
        keys = [
            cache_key(kind="generate", backend=self.backend.identity, messages=c, params=p.as_dict())
            for c, p in zip(conversations, every)
        ]
        return self._through_cache(
            keys,
            lambda todo: self.backend.generate([conversations[i] for i in todo], [every[i] for i in todo]),
            Completion,
        )

    def score_choices(
        self, conversations: Sequence[Conversation], choices: Sequence[str]
    ) -> list[ChoiceScores]:
        keys = [
            cache_key(kind="score", backend=self.backend.identity, messages=c, choices=list(choices))
            for c in conversations
        ]
        return self._through_cache(
            keys,
            lambda todo: self.backend.score_choices([conversations[i] for i in todo], choices),
            _scores_from_dict,
        )

    def last_hidden_states(self, conversations: Sequence[Conversation]) -> list[np.ndarray]:
        keys = [cache_key(kind="states", backend=self.backend.identity, messages=c) for c in conversations]
        found = self._through_cache(
            keys,
            lambda todo: [
                _States(state.astype(np.float32).tolist(), 0)
                for state in self.backend.last_hidden_states([conversations[i] for i in todo])
            ],
            _States,
        )
        return [np.asarray(item.state, dtype=np.float32) for item in found]

    def _through_cache(
        self,
        keys: list[str],
        send: Callable[[list[int]], list[Result]],
        from_json: Callable[..., Result],
    ) -> list[Result]:
        cached = self.cache.get_many(keys) if self.cache is not None else {}
        todo = [i for i, key in enumerate(keys) if key not in cached]
        start = time.perf_counter()
        try:
            fresh = dict(zip(todo, send(todo))) if todo else {}
        except PartialBatchError as error:
            # Some requests failed for good: keep and count the answers already paid for, then
            # report the failure (a rerun asks only for what is still missing).
            answered: dict[int, Any] = {todo[position]: result for position, result in error.answered.items()}
            self._keep(keys, answered, len(todo), time.perf_counter() - start)
            raise
        self._keep(keys, fresh, len(todo), time.perf_counter() - start if todo else 0.0)
        return [fresh[i] if i in fresh else from_json(**cached[key]) for i, key in enumerate(keys)]

    def _keep(self, keys: list[str], fresh: dict[int, Any], sent: int, seconds: float) -> None:
        """Cache fresh answers (by position in ``keys``) and record the call in the ledger."""
        self._store({keys[i]: asdict(result) for i, result in fresh.items()})
        self.ledger.record(
            self.role,
            RoleUsage(
                queries=sent,
                cache_hits=len(keys) - sent,
                prompt_tokens=sum(r.prompt_tokens for r in fresh.values()),
                completion_tokens=sum(getattr(r, "completion_tokens", 0) for r in fresh.values()),
                seconds=seconds,
            ),
        )

    def _store(self, items: dict[str, Any]) -> None:
        if self.cache is None or not items:
            return
        try:
            self.cache.put_many(items)
        except sqlite3.OperationalError as error:
            # A full disk must not cost the answers already paid for: keep going uncached.
            logger.warning("LLM cache %s is not writable (%s); continuing uncached", self.cache.path, error)
            self.cache = None


def _scores_from_dict(logprobs: list[float], prompt_tokens: int, details: dict[str, Any]) -> ChoiceScores:
    return ChoiceScores(logprobs=tuple(logprobs), prompt_tokens=prompt_tokens, details=details)
