"""The OpenAI-compatible backend: retries on 429/5xx/timeouts, clear errors, keys from the
environment only; and for real, against llama-cpp-python's server on the embedded GGUF."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fake_openai_server import FakeOpenAI, serve

from teams_env.llm.base import GenerationParams, LLMError, PartialBatchError, ScoringUnsupported
from teams_env.llm.cache import ResponseCache
from teams_env.llm.embedded import embedded_gguf_path
from teams_env.llm.llamacpp import LlamaCppBackend
from teams_env.llm.openai import OpenAIBackend
from teams_env.llm.service import LLMService
from teams_env.reward.reviewer import LABELS, Reviewer, review_conversation

CHAT = [{"role": "user", "content": "Say hello."}]


def backend_for(fake: FakeOpenAI, **kwargs) -> OpenAIBackend:
    options = {"max_retries": 3, "backoff": 0.01, "timeout": 5.0} | kwargs
    return OpenAIBackend("test-model", base_url=fake.url, **options)


@pytest.mark.parametrize("failure", [500, 502, 503, 429, "garbage"])
def test_transient_failures_are_retried(failure):
    with serve(FakeOpenAI([failure, failure])) as fake:
        completion = backend_for(fake).generate([CHAT], GenerationParams())[0]
    assert completion.text == "A fine answer." and completion.prompt_tokens == 7
    assert len(fake.requests) == 3


def test_a_hanging_server_times_out_and_is_retried():
    with serve(FakeOpenAI(["hang"])) as fake:
        completion = backend_for(fake, timeout=0.3).generate([CHAT], GenerationParams())[0]
    assert completion.text == "A fine answer." and len(fake.requests) == 2


def test_client_errors_are_not_retried():
    with serve(FakeOpenAI([400])) as fake, pytest.raises(LLMError, match="HTTP 400: planned 400"):
        backend_for(fake).generate([CHAT], GenerationParams())
    assert len(fake.requests) == 1


def test_persistent_failure_names_the_url_and_the_problem():
    with serve(FakeOpenAI([500] * 10)) as fake, pytest.raises(LLMError) as error:
        backend_for(fake, max_retries=2).generate([CHAT], GenerationParams())
    assert str(error.value) == f"{fake.url}/chat/completions: HTTP 500 after 3 attempts"


def test_a_missing_server_is_a_clear_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OpenAIBackend("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff=0.01)
    with pytest.raises(LLMError, match=rf"http://127.0.0.1:{port}/v1/chat/completions: cannot connect"):
        backend.generate([CHAT], GenerationParams())


def test_requests_run_concurrently_and_keep_their_order():
    with serve(FakeOpenAI([])) as fake:
        fake.answer = "same"
        results = backend_for(fake, concurrency=4).generate(
            [[{"role": "user", "content": str(i)}] for i in range(8)], GenerationParams()
        )
    assert len(results) == 8 and len(fake.requests) == 8
    assert sorted(r["messages"][0]["content"] for r in fake.requests) == [str(i) for i in range(8)]


QUESTIONS = [[{"role": "user", "content": f"question {i}"}] for i in range(6)]


def test_a_request_that_fails_for_good_keeps_the_others_answers():
    fake = FakeOpenAI([], answer="answer to {question}", fail_if="question 3")
    failure = r"HTTP 500 after 2 attempts \(1 of 6 requests failed; the 5 answered are kept\)"
    with serve(fake), pytest.raises(PartialBatchError, match=failure) as error:
        backend_for(fake, max_retries=1, concurrency=3).generate(QUESTIONS, GenerationParams())
    assert sorted(error.value.answered) == [0, 1, 2, 4, 5]
    assert all(error.value.answered[i].text == f"answer to question {i}" for i in error.value.answered)


def test_a_batch_with_one_failing_request_caches_the_others(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    params = GenerationParams()
    with serve(FakeOpenAI([], answer="answer to {question}", fail_if="question 3")) as fake:
        service = LLMService(backend_for(fake, max_retries=1), "expert", cache=cache)
        with pytest.raises(PartialBatchError):
            service.generate(QUESTIONS, params)
        assert len(cache) == 5
        assert service.ledger.snapshot()["expert"].queries == 6  # all six were sent and paid for
        fake.fail_if, fake.requests = None, []  # the server is healthy again: a rerun
        answers = service.generate(QUESTIONS, params)
    assert [a.text for a in answers] == [f"answer to question {i}" for i in range(6)]
    assert [r["messages"][0]["content"] for r in fake.requests] == ["question 3"]  # only the missing one
    assert service.ledger.snapshot()["expert"].cache_hits == 5
    assert len(cache) == 6


def test_when_every_request_fails_the_error_is_the_plain_one():
    with serve(FakeOpenAI([400, 400])) as fake, pytest.raises(LLMError, match="HTTP 400") as error:
        backend_for(fake).generate(QUESTIONS[:2], GenerationParams())
    assert not isinstance(error.value, PartialBatchError)


def test_first_token_scores_and_missing_logprobs():
    top = [
        {"token": "Not", "logprob": -0.5},
        {"token": " Equal", "logprob": -1.2},
        {"token": "The", "logprob": -3.0},
    ]
    with serve(FakeOpenAI([], logprobs=top)) as fake:
        scores = backend_for(fake).score_choices([CHAT], LABELS)[0]
    assert scores.logprobs == pytest.approx((-1.2, -0.5))
    with serve(FakeOpenAI([])) as fake, pytest.raises(ScoringUnsupported):
        backend_for(fake).score_choices([CHAT], LABELS)


def test_a_reply_that_names_neither_label_earns_nothing():
    # "N" and "E" start the labels but are not their tokens; "The" is neither: no judgement, no reward.
    top = [
        {"token": "N", "logprob": -0.2},
        {"token": "E", "logprob": -1.0},
        {"token": "The", "logprob": -3.0},
    ]
    with serve(FakeOpenAI([], logprobs=top)) as fake:
        scores = backend_for(fake).score_choices([CHAT], LABELS)[0]
        judgement = Reviewer(LLMService(backend_for(fake), "reviewer"), threshold=0.5).judge([("a", "b")])[0]
    assert scores.details["undecided"] is True
    assert judgement.undecided and judgement.verdict == "Equal" and not judgement.rewarded


def test_reviewer_falls_back_to_generated_verdicts():
    with serve(FakeOpenAI([], answer="Not Equal")) as fake:
        reviewer = Reviewer(LLMService(backend_for(fake), "reviewer"))
        judgement = reviewer.judge([("a", "b")])[0]
    assert (judgement.verdict, judgement.method) == ("Not Equal", "generate")


def test_the_api_key_is_sent_but_never_stored(tmp_path, monkeypatch):
    secret = "sk-test-1234567890-secret"
    monkeypatch.setenv("TEAMS_TEST_KEY", secret)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with serve(FakeOpenAI([])) as fake:
        backend = backend_for(fake, api_key_env="TEAMS_TEST_KEY")
        LLMService(backend, "expert", cache=cache).generate([CHAT], GenerationParams())
    assert fake.headers[0]["Authorization"] == f"Bearer {secret}"
    assert secret not in backend.identity
    cache.close()
    for path in tmp_path.iterdir():
        assert secret.encode() not in path.read_bytes()


# -- the real thing: llama-cpp-python's OpenAI-compatible server on loopback -------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    command = [
        sys.executable, "-m", "teams_rl.llamacpp_server",
        "--model", str(embedded_gguf_path()), "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--logits_all", "true",
    ]  # fmt: skip
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama-cpp server exited: {Path(log).read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama-cpp server did not start within 90 s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.slow
def test_real_server_generates_and_scores_like_the_local_backend(llama_server):
    remote = OpenAIBackend("smollm2", base_url=llama_server, max_retries=2)
    answers = remote.generate(
        [CHAT, [{"role": "user", "content": "Name a colour."}]], GenerationParams(max_new_tokens=24)
    )
    assert all(a.text.strip() and a.completion_tokens <= 24 for a in answers)

    question = [{"role": "user", "content": "Is the sky blue on a clear day? Answer Yes or No."}]
    remote_scores = remote.score_choices([question], ["Yes", "No"])[0].logprobs
    local_scores = (
        LlamaCppBackend(embedded_gguf_path(), max_batch=1)
        .score_choices([question], ["Yes", "No"])[0]
        .logprobs
    )
    # Same GGUF, two runtimes: first-token log-probabilities agree closely.
    assert remote_scores == pytest.approx(local_scores, abs=0.3)


@pytest.mark.slow
def test_real_server_drives_the_reviewer(llama_server):
    reviewer = Reviewer(
        LLMService(OpenAIBackend("smollm2", base_url=llama_server), "reviewer"), threshold=0.5
    )
    judgement = reviewer.judge([("Describe a cat.", "Describe a cat, its diet, and how it hunts at night.")])[
        0
    ]
    assert judgement.method == "likelihood" and 0.0 < judgement.p_not_equal < 1.0
    scores = OpenAIBackend("smollm2", base_url=llama_server).score_choices(
        [review_conversation("a", "b")], LABELS
    )[0]
    assert all(value < 0 for value in scores.logprobs)


def test_without_its_key_variable_the_backend_sends_no_key(monkeypatch):
    # Local servers need no key: the backend builds and sends no auth header. Only the variable it
    # is told to read counts: a key in OPENAI_API_KEY must not leak to a server configured otherwise.
    monkeypatch.delenv("TEAMS_TEST_ABSENT_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-meant-for-another-server")
    with serve(FakeOpenAI([])) as fake:
        (completion,) = backend_for(fake, api_key_env="TEAMS_TEST_ABSENT_KEY").generate(
            [CHAT], GenerationParams()
        )
    assert completion.text == "A fine answer."
    assert "authorization" not in {name.lower() for name in fake.headers[0]}
    assert "sk-meant-for-another-server" not in str(fake.headers)


def test_prefilled_replies_are_continued_on_vllm_only_when_asked():
    prefilled = [*CHAT, {"role": "assistant", "content": "Write a poem"}]
    with serve(FakeOpenAI([])) as fake:
        backend_for(fake).generate([prefilled], GenerationParams())
        backend_for(fake, continue_final_message=True).generate([prefilled, CHAT], GenerationParams())
    plain, *batch = fake.requests
    # The batch's two requests are sent concurrently: tell them apart by content, not arrival order.
    unprefilled, continued = sorted(batch, key=lambda request: request["messages"][-1]["role"] == "assistant")
    assert continued["messages"][-1] == prefilled[-1]
    assert "continue_final_message" not in plain
    assert continued["continue_final_message"] is True and continued["add_generation_prompt"] is False
    assert "continue_final_message" not in unprefilled
