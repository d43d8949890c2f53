"""OpenAI-compatible HTTP backend (OpenAI, vLLM, llama.cpp server, Ollama, ...): concurrent
requests, retries with exponential backoff on 429 / 5xx / timeouts, API key from the environment."""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from teams_env.llm.base import (
    ChoiceScores,
    Completion,
    Conversation,
    LLMBackend,
    LLMError,
    Params,
    PartialBatchError,
    ScoringUnsupported,
    per_request,
)

Result = TypeVar("Result", Completion, ChoiceScores)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIBackend(LLMBackend):
    """Chat completions over HTTP. The key is read from ``api_key_env`` (default ``OPENAI_API_KEY``)
    when the backend is built and is kept only in the request headers: never in a cache key, a log
    or an error message."""

    kind = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        top_logprobs: int = 20,
        continue_final_message: bool = False,
    ) -> None:
        """``continue_final_message``: send vLLM's flags that make a conversation ending with an
        assistant message (the expert's prefilled reply) be continued rather than answered anew.
        Other servers either continue such a message by themselves (llama.cpp) or write a whole new
        reply, which the rewrite engine recognises because it repeats the prefilled beginning."""
        if not model:
            raise ValueError("the openai backend needs a model name, e.g. 'openai:gpt-4o-mini'")
        self._model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.top_logprobs = top_logprobs
        self.continue_final_message = continue_final_message
        headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(api_key_env)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    @property
    def model_id(self) -> str:
        return self._model

    @property
    def identity(self) -> str:
        return f"{self.kind}:{self._model}@{self.base_url}"

    # -- HTTP ----------------------------------------------------------------------------
    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /chat/completions with retries; a clear LLMError when it keeps failing."""
        url = f"{self.base_url}/chat/completions"
        problem = ""
        for attempt in range(self.max_retries + 1):
            retry_after: float | None = None
            try:
                response = self._client.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                problem = "timed out"
            except httpx.TransportError as error:
                problem = f"cannot connect ({type(error).__name__})"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError:
                        problem = "answered with invalid JSON"
                elif response.status_code in RETRY_STATUS:
                    problem = f"HTTP {response.status_code}"
                    retry_after = _retry_after_seconds(response)
                else:
                    raise LLMError(f"{url}: HTTP {response.status_code}: {_error_text(response)}")
            if attempt < self.max_retries:
                delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
                time.sleep(retry_after if retry_after is not None else delay)
        raise LLMError(f"{url}: {problem} after {self.max_retries + 1} attempts")

    def _map(self, bodies: list[dict[str, Any]], parse: Callable[[dict[str, Any]], Result]) -> list[Result]:
        """Send every request (concurrently) and parse each reply, in order.

        A request that fails for good does not cost the others: every request still runs, and
        when some failed the answered ones come back in a :class:`PartialBatchError` for the
        caller to keep. A server that gives no log-probabilities is a setup problem, not a loss:
        that error is raised as it is.
        """
        if len(bodies) <= 1:
            return [parse(self._post(b)) for b in bodies]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(bodies))) as pool:
            futures = [pool.submit(lambda body: parse(self._post(body)), b) for b in bodies]
        answered: dict[int, Result] = {}
        failures: list[LLMError] = []
        for position, future in enumerate(futures):
            try:
                answered[position] = future.result()
            except LLMError as error:
                failures.append(error)
        if not failures:
            return [answered[position] for position in range(len(bodies))]
        unsupported = [error for error in failures if isinstance(error, ScoringUnsupported)]
        if unsupported or not answered:
            raise (unsupported or failures)[0]
        raise PartialBatchError(
            f"{failures[0]} ({len(failures)} of {len(bodies)} requests failed; "
            f"the {len(answered)} answered are kept)",
            answered,
        ) from failures[0]

    # -- LLMBackend ----------------------------------------------------------------------
    def generate(self, conversations: Sequence[Conversation], params: Params) -> list[Completion]:
        bodies = []
        for conversation, own in zip(conversations, per_request(params, len(conversations))):
            body: dict[str, Any] = {
                "model": self._model,
                "messages": conversation,
                "max_tokens": own.max_new_tokens,
                "temperature": own.temperature,
                "top_p": own.top_p,
                "seed": own.request_seed(conversation),
            }
            if self.continue_final_message and conversation[-1]["role"] == "assistant":
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
            if own.stop:
                body["stop"] = list(own.stop)
            bodies.append(body)
        return self._map(bodies, self._completion)

    def _completion(self, reply: dict[str, Any]) -> Completion:
        try:
            choice = reply["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as error:
            raise LLMError(f"{self.base_url}: malformed chat completion ({error!r})") from error
        usage = reply.get("usage") or {}
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=str(choice.get("finish_reason") or "stop"),
        )

    def score_choices(
        self, conversations: Sequence[Conversation], choices: Sequence[str]
    ) -> list[ChoiceScores]:
        """First-token log-probabilities of each choice.

        The chat API cannot score a given reply, only show the top alternatives for the next
        token, so a choice is scored by the first token of the reply that starts it. The choices
        must therefore differ in their first word (the reviewer's labels do).
        """
        bodies = [
            {
                "model": self._model,
                "messages": conversation,
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": True,
                "top_logprobs": self.top_logprobs,
            }
            for conversation in conversations
        ]
        return self._map(bodies, lambda reply: self._first_token_scores(reply, choices))

    def _first_token_scores(self, reply: dict[str, Any], choices: Sequence[str]) -> ChoiceScores:
        try:
            top = reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        except (KeyError, IndexError, TypeError):
            top = None
        if not top:
            raise ScoringUnsupported(f"{self.base_url} returned no log-probabilities for model {self._model}")
        # A token counts for a choice only when it is that choice's whole first word: "N", "E" or
        # "no" are not "Not" or "Equal", and a token that starts several choices says nothing.
        first_words = [c.split()[0].lower() if c.split() else "" for c in choices]
        mass: list[list[float]] = [[] for _ in choices]
        for entry in top:
            piece = str(entry.get("token", "")).strip().lower()
            owners = [k for k, word in enumerate(first_words) if piece and piece == word]
            if len(owners) == 1:
                mass[owners[0]].append(float(entry["logprob"]))
        floor = min(float(e["logprob"]) for e in top) - math.log(2.0)
        logprobs = tuple(_logsumexp(m) if m else floor for m in mass)
        usage = reply.get("usage") or {}
        return ChoiceScores(
            logprobs=logprobs,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            # None of the choices among the top tokens: the scores are a floor, not a judgement.
            details={"undecided": not any(mass)},
        )

    def close(self) -> None:
        self._client.close()


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(60.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return str(message or response.text)[:300]
    except ValueError:
        return response.text[:300]
