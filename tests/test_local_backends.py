"""The embedded model through llama.cpp (batched, with prefix reuse) and through transformers."""

from __future__ import annotations

import pytest

from teams_env.llm.base import GenerationParams, LLMError
from teams_env.llm.embedded import embedded_gguf_path, embedded_hf_dir
from teams_env.llm.hf import HFBackend
from teams_env.llm.llamacpp import BLOCK, MIN_SHARED_COPY, LlamaCppBackend

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "Is the sky blue on a clear day? Answer Yes or No."}]
PROMPTS = [
    [{"role": "user", "content": text}]
    for text in ("Name a fruit.", "Write a haiku about snow.", "What is 2 + 2?")
]


@pytest.fixture(scope="module")
def llama() -> LlamaCppBackend:
    return LlamaCppBackend(embedded_gguf_path(), max_batch=4, context_per_sequence=1024)


@pytest.fixture(scope="module")
def hf() -> HFBackend:
    return HFBackend(embedded_hf_dir(), max_batch=4)


def test_llamacpp_generates_a_batch(llama):
    answers = llama.generate(PROMPTS, GenerationParams(max_new_tokens=24))
    assert len(answers) == 3 and all(a.text.strip() for a in answers)
    assert all(0 < a.completion_tokens <= 24 and a.prompt_tokens > 10 for a in answers)
    assert "4" in answers[2].text or "four" in answers[2].text.lower()


def test_llamacpp_batched_greedy_matches_one_by_one(llama):
    params = GenerationParams(max_new_tokens=20)
    assert [a.text for a in llama.generate(PROMPTS, params)] == [
        llama.generate([p], params)[0].text for p in PROMPTS
    ]


def test_llamacpp_sampling_is_seeded_per_request(llama):
    params = GenerationParams(max_new_tokens=16, temperature=0.9, top_p=0.95, seed=11)
    alone = llama.generate(PROMPTS[1:2], params)[0].text
    in_batch = llama.generate(PROMPTS, params)[1].text
    assert alone == in_batch  # each request draws from its own generator
    other_seed = llama.generate(PROMPTS[1:2], GenerationParams(max_new_tokens=16, temperature=0.9, seed=12))[
        0
    ].text
    assert other_seed != alone


def test_llamacpp_scores_choices_and_reuses_prefixes(llama, monkeypatch):
    first = llama.score_choices([QUESTION], ["Yes", "No", "Not sure at all"])[0]
    assert all(value < 0 for value in first.logprobs)
    assert first.logprobs[2] < min(first.logprobs[:2])  # a long unlikely reply scores lowest
    llama.generate(PROMPTS, GenerationParams(max_new_tokens=4))  # other prompts pass through the slots
    again = llama.score_choices([QUESTION, QUESTION], ["Yes", "No", "Not sure at all"])
    for scores in again:  # each sequence has its own KV stream, so batching changes nothing
        assert scores.logprobs == pytest.approx(first.logprobs, abs=1e-4)

    # Reuse, counted on a cold batched backend (slots empty, so the counts do not depend on earlier
    # tests): the same prompt twice in a batch reuses its own slot's cache once and is copied to a
    # second slot once; only each prompt's last token is computed again.
    cold = LlamaCppBackend(embedded_gguf_path(), max_batch=2, context_per_sequence=256, deterministic=False)
    copies: list[int] = []
    decoded: list[int] = []  # tokens per decode call ("Yes" and "No" are one token: prefill only)
    copy_prefix, decode = cold._copy_prefix, cold._decode
    monkeypatch.setattr(cold, "_copy_prefix", lambda *args: copies.append(args[2]) or copy_prefix(*args))
    monkeypatch.setattr(
        cold, "_decode", lambda entries, *rest: decoded.append(len(entries)) or decode(entries, *rest)
    )
    length = len(cold.tokenize_prompt(QUESTION))
    assert length - 1 >= MIN_SHARED_COPY  # long enough to be worth a copy
    alone = cold.score_choices([QUESTION], ["Yes", "No"])[0]
    assert (copies, decoded) == ([], [length])  # a cold slot computes the whole prompt
    decoded.clear()
    twice = cold.score_choices([QUESTION, QUESTION], ["Yes", "No"])
    assert copies == [length - 1]  # the second sequence got the first one's prefix by a copy
    assert decoded == [2]  # and each computed only its last prompt token
    for scores in twice:
        assert scores.logprobs == pytest.approx(alone.logprobs, abs=1e-4)
    cold.close()


def test_deterministic_llamacpp_reuses_whole_blocks(monkeypatch):
    """The default (deterministic) mode computes a prompt in BLOCK-token pieces and reuses only whole
    blocks: a repeated prompt computes just its last partial block, in its own slot or a copy."""
    cold = LlamaCppBackend(embedded_gguf_path(), max_batch=2, context_per_sequence=256)
    copies: list[int] = []
    decoded: list[int] = []
    copy_prefix, decode = cold._copy_prefix, cold._decode
    monkeypatch.setattr(cold, "_copy_prefix", lambda *args: copies.append(args[2]) or copy_prefix(*args))
    monkeypatch.setattr(
        cold, "_decode", lambda entries, *rest: decoded.append(len(entries)) or decode(entries, *rest)
    )
    length = len(cold.tokenize_prompt(QUESTION))
    whole = (length - 1) // BLOCK * BLOCK
    alone = cold.score_choices([QUESTION], ["Yes", "No"])[0]
    assert copies == [] and sum(decoded) == length and max(decoded) == BLOCK
    decoded.clear()
    twice = cold.score_choices([QUESTION, QUESTION], ["Yes", "No"])
    assert copies == [whole] and decoded == [length - whole, length - whole]
    assert [scores.logprobs for scores in twice] == [alone.logprobs, alone.logprobs]  # bit for bit
    cold.close()


def test_llamacpp_refuses_a_request_longer_than_its_context(llama):
    long = [{"role": "user", "content": "word " * 1200}]
    with pytest.raises(LLMError, match=r"needs \d+ tokens but each sequence has 1024"):
        llama.generate([long], GenerationParams(max_new_tokens=8))


def test_hf_batched_generation_matches_one_by_one(hf):
    params = GenerationParams(max_new_tokens=12)
    batched = [a.text for a in hf.generate(PROMPTS, params)]
    single = [hf.generate([p], params)[0].text for p in PROMPTS]
    assert batched == single and all(batched)


def test_hf_batched_choice_scores_match_one_by_one(hf):
    conversations = [QUESTION, *PROMPTS]  # prompts of different lengths: rows padded differently
    choices = ["Equal", "Not Equal"]
    batched = hf.score_choices(conversations, choices)
    for conversation, scores in zip(conversations, batched):
        alone = hf.score_choices([conversation], choices)[0]
        assert scores.logprobs == pytest.approx(alone.logprobs, abs=1e-3)
        assert all(value < 0 for value in alone.logprobs)


def test_the_two_runtimes_agree_on_choice_scores(llama, hf):
    choices = ["Yes", "No", "Not Equal"]
    local = llama.score_choices([QUESTION], choices)[0].logprobs
    dequantized = hf.score_choices([QUESTION], choices)[0].logprobs
    # The same Q4_1 weights, llama.cpp vs float32 transformers: close, not identical.
    assert dequantized == pytest.approx(local, abs=0.5)
    assert (local[0] > local[1]) == (dequantized[0] > dequantized[1])


def test_a_deterministic_llamacpp_answers_regardless_of_earlier_traffic(llama):
    """The same request gets the same answer: cold slots, one request at a time, against warm slots
    after other traffic, in one batched call in another order: identical texts, log-probabilities
    and hidden states."""
    import numpy as np

    from teams_env.actions import ACTIONS, rewrite_conversation
    from teams_env.reward.review_head import head_conversation

    seeds = ["How to cook rice without a rice cooker", "Explain why the sky is blue.", "Name three rivers."]
    requests = [rewrite_conversation(ACTIONS[i], seed) for i, seed in enumerate(seeds)]
    traffic = [rewrite_conversation(ACTIONS[5 - i], seed) for i, seed in enumerate(seeds)]
    pairs = [head_conversation(seed, seed + " Use a table.") for seed in seeds]
    params = GenerationParams(max_new_tokens=24)
    order = [2, 0, 1]

    cold = LlamaCppBackend(embedded_gguf_path(), deterministic=True)
    cold_texts = [cold.generate([r], params)[0].text for r in requests]
    cold_scores = [cold.score_choices([q], ["Yes", "No"])[0].logprobs for q in [QUESTION, *PROMPTS]]
    cold_states = [cold.last_hidden_states([p])[0] for p in pairs]

    warm = LlamaCppBackend(embedded_gguf_path(), deterministic=True)
    warm.generate(traffic, params)
    warm.last_hidden_states(pairs[::-1])
    texts = warm.generate([requests[i] for i in order], params)
    scores = warm.score_choices([*PROMPTS, QUESTION], ["Yes", "No"])
    states = warm.last_hidden_states([pairs[i] for i in order])

    assert [texts[order.index(i)].text for i in range(3)] == cold_texts
    assert [s.logprobs for s in [scores[3], *scores[:3]]] == cold_scores
    assert all(np.array_equal(states[order.index(i)], cold_states[i]) for i in range(3))
    # Its answers are cached apart from the batched mode's, which may differ in the last digits.
    batched = LlamaCppBackend(
        embedded_gguf_path(), max_batch=1, context_per_sequence=256, deterministic=False
    )
    assert warm.model_id == batched.model_id and warm.identity != batched.identity
    assert llama.identity == warm.identity  # deterministic is the default


def test_a_deterministic_llamacpp_answers_the_same_inside_a_continuous_batch(llama):
    """More requests than slots: answers are admitted while others are mid-decode, and each decoding
    step mixes sequences of different lengths. Every answer equals the same request's answer
    computed alone in a fresh backend (with flash attention on, 29 of 96 rewrites differed)."""
    from teams_env.actions import ACTIONS, rewrite_conversation

    seeds = ["How to cook rice without a rice cooker", "Explain why the sky is blue.", "Name three rivers."]
    requests = [rewrite_conversation(action, seed) for seed in seeds for action in ACTIONS]
    # Lengths that differ by action, so the backend admits them out of arrival order (longest first).
    params = [
        GenerationParams(max_new_tokens=16 + 4 * action) for _ in seeds for action in range(len(ACTIONS))
    ]
    assert LlamaCppBackend._admission_order(params)[:3] == [5, 11, 17]
    together = llama.generate(requests, params)  # 18 requests through 4 decoding places
    alone = LlamaCppBackend(embedded_gguf_path(), max_batch=4, context_per_sequence=1024)
    assert [a.text for a in together] == [alone.generate([r], p)[0].text for r, p in zip(requests, params)]
