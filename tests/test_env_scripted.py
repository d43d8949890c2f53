"""The environment's behaviour on the scripted backend: spaces, observations, rewards, episode end,
info, render, and clear errors for bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import teams_env  # noqa: F401  (registers the environments)
from teams_env.actions import ACTION_NAMES
from teams_env.base_env import OBSERVATION_EMBEDDING_DTYPE as EMBEDDING_DTYPE
from teams_env.env import TeaMsInstructEnv
from teams_env.llm.scripted import ScriptedBackend, scripted_reply

INSTRUCTION = "Explain why the sky is blue."


def test_spaces_follow_the_arguments(scripted_env_kwargs):
    env = TeaMsInstructEnv(**scripted_env_kwargs(action_dim=7, max_steps=4))
    assert env.action_space.shape == (7,)
    # By default each step's row also carries its verdict, and the instruction's length follows.
    assert env.observation_space.shape == (env.encoder.dim + 7 * 4 + 1 + 1,)
    plain = TeaMsInstructEnv(**scripted_env_kwargs(max_steps=4, observe_verdicts=False))
    assert plain.observation_space.shape == (env.encoder.dim + 6 * 4 + 1,)
    discrete = TeaMsInstructEnv(
        **scripted_env_kwargs(action_type="discrete", observation="last_action", observe_verdicts=False)
    )
    assert discrete.action_space.n == 6
    assert discrete.observation_space.shape == (6,)


def test_text_observation_holds_embedding_history_and_progress(scripted_env_kwargs):
    env = TeaMsInstructEnv(**scripted_env_kwargs(action_type="discrete", observe_verdicts=False))
    obs, info = env.reset(seed=0, options={"instruction": INSTRUCTION})
    dim = env.encoder.dim
    # The embedding at the observation's (half) precision: what a recorded pack stores exactly.
    np.testing.assert_array_equal(obs[:dim], env.encoder.encode([INSTRUCTION])[0].astype(EMBEDDING_DTYPE))
    assert not obs[dim:].any()
    obs, _, _, _, info = env.step(2)
    history = obs[dim : dim + 36].reshape(6, 6)
    assert history[0].tolist() == [0, 0, 1, 0, 0, 0] and not history[1:].any()
    assert obs[-1] == pytest.approx(1 / 6)
    np.testing.assert_array_equal(
        obs[:dim], env.encoder.encode([info["instruction"]])[0].astype(EMBEDDING_DTYPE)
    )
    assert env.observation_space.contains(obs)


def test_last_action_observation_is_one_hot(scripted_env_kwargs):
    env = TeaMsInstructEnv(
        **scripted_env_kwargs(action_type="discrete", observation="last_action", observe_verdicts=False)
    )
    obs, _ = env.reset(seed=0)
    assert not obs.any()
    obs, *_ = env.step(4)
    assert obs.tolist() == [0, 0, 0, 0, 1, 0]


def test_episode_rewards_info_and_end(scripted_env_kwargs):
    env = TeaMsInstructEnv(**scripted_env_kwargs(action_type="discrete"))
    env.reset(seed=3, options={"instruction": INSTRUCTION})
    for step, action in enumerate([0, 1, 2, 3, 4, 5], start=1):
        _, reward, terminated, truncated, info = env.step(action)
        assert reward == 1.0 and info["verdict"] == "Not Equal"
        assert info["action_name"] == ACTION_NAMES[action] and info["step"] == step
        assert info["instruction"].startswith(info["previous_instruction"])
        assert info["queries"] == {"expert": step, "reviewer": step}
        assert terminated is (step == 6) and truncated is False
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_unchanged_and_empty_rewrites_are_equal_without_asking_the_reviewer(scripted_env_kwargs):
    for reply, failure in ((lambda conv: INSTRUCTION, "unchanged"), (lambda conv: "   ", "empty")):
        backend = ScriptedBackend(reply=reply)
        env = TeaMsInstructEnv(
            **scripted_env_kwargs(expert=backend, action_type="discrete", reviewer_threshold=0.5)
        )
        env.reset(seed=0, options={"instruction": INSTRUCTION})
        _, reward, _, _, info = env.step(1)
        assert reward == 0.0 and info["verdict"] == "Equal"
        assert info["rewrite_failure"] == failure and info["instruction"] == INSTRUCTION
        assert backend.requests["score"] == 0


def test_leaked_prompt_words_cost_the_leak_penalty(scripted_env_kwargs):
    leaky = ScriptedBackend(
        reply=lambda conv: "#Rewritten Prompt#: " + scripted_reply(conv) + " as the rewritten prompt"
    )
    env = TeaMsInstructEnv(**scripted_env_kwargs(expert=leaky, action_type="discrete", leak_penalty=0.5))
    env.reset(seed=0, options={"instruction": INSTRUCTION})
    _, reward, _, _, info = env.step(0)
    assert info["leaked_phrase"] == "rewritten prompt"
    # Not a valid rewrite (no reward), and the penalty on top.
    assert info["valid"] is False and info["invalid_reason"] == "leaked_prompt_words"
    assert reward == pytest.approx(-0.5)
    assert not info["instruction"].startswith("#Rewritten Prompt#")  # the label itself is cleaned off


def test_continuous_actions_decode_to_the_nearest_action(scripted_env_kwargs):
    env = TeaMsInstructEnv(**scripted_env_kwargs())
    env.reset(seed=0)
    for action in range(6):
        vector = env.codec.encode(action)
        assert env.action_space.contains(vector)
        assert env.decode_action(vector) == action


def test_seed_pool_sampling_is_seeded(scripted_env_kwargs):
    env = TeaMsInstructEnv(**scripted_env_kwargs())
    first = [env.reset(seed=s)[1]["instruction"] for s in range(10)]
    again = [env.reset(seed=s)[1]["instruction"] for s in range(10)]
    assert first == again
    assert len(set(first)) > 5


def test_seed_text_is_data_not_a_format_string(scripted_env_kwargs):
    tricky = "Print {instruction} and {0} literally, then 100% of %s."
    env = TeaMsInstructEnv(**scripted_env_kwargs(action_type="discrete"))
    env.reset(seed=0, options={"instruction": tricky})
    _, _, _, _, info = env.step(1)
    assert info["instruction"].startswith(tricky)


def test_render_ansi_shows_the_step(scripted_env_kwargs):
    env = TeaMsInstructEnv(**scripted_env_kwargs(action_type="discrete", render_mode="ansi"))
    env.reset(seed=0, options={"instruction": INSTRUCTION})
    assert INSTRUCTION in env.render()
    env.step(3)
    text = env.render()
    assert "step 1/6 concretizing" in text and "Not Equal" in text and "before:" in text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"instruction": ""}, "instruction is empty"),
        ({"instruction": " \n\t "}, "instruction is empty"),
        ({"instruction": "x" * 20_000}, "20000 characters; the limit is 4000"),
        ({"instruction": 42}, "must be a string"),
    ],
)
def test_bad_instructions_are_clear_errors(scripted_env_kwargs, options, message):
    env = TeaMsInstructEnv(**scripted_env_kwargs())
    with pytest.raises((ValueError, TypeError), match=message):
        env.reset(seed=0, options=options)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"expert": "gpt5"}, "unknown LLM backend 'gpt5'"),
        ({"action_type": "both"}, "action_type must be"),
        ({"observation": "pixels"}, "observation must be"),
        ({"action_dim": 1}, "action_dim must be between 2"),
        ({"seeds": ["fine", "   "]}, "seed 'seed-1': instruction is empty"),
        ({"render_mode": "human"}, "render_mode must be"),
    ],
)
def test_bad_arguments_are_clear_errors(scripted_env_kwargs, overrides, message):
    with pytest.raises(ValueError, match=message):
        TeaMsInstructEnv(**scripted_env_kwargs(**overrides))


def test_gym_make_passes_arguments(scripted_env_kwargs):
    env = gym.make("TeaMsInstructDiscrete-v0", **scripted_env_kwargs(max_steps=2))
    env.reset(seed=0)
    env.step(0)
    assert env.step(1)[2] is True


def test_an_invalid_rewrite_earns_nothing_and_says_why(scripted_env_kwargs):
    looping = ScriptedBackend(
        reply=lambda conv: " the recipe" * 20  # a loop that outweighs the instruction
    )
    env = TeaMsInstructEnv(
        **scripted_env_kwargs(expert=looping, action_type="discrete", reviewer_threshold=0.5)
    )
    env.reset(seed=0, options={"instruction": INSTRUCTION})
    _, reward, _, _, info = env.step(1)
    assert reward == 0.0 and info["valid"] is False and info["invalid_reason"] == "repetitive"
    assert info["review_method"] == "rule" and info["queries"]["reviewer"] == 0  # no model asked
    good = TeaMsInstructEnv(**scripted_env_kwargs(action_type="discrete", reviewer_threshold=0.5))
    good.reset(seed=0, options={"instruction": INSTRUCTION})
    _, reward, _, _, info = good.step(1)
    assert reward == 1.0 and info["valid"] is True and info["invalid_reason"] is None
