"""The verdict observation (``observe_verdicts=True``): each past step's action and whether it was
rewarded (and, with text, the current instruction's length), bit for bit the same in the live env
and its replay."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from scripted_packs import record_novelty_pack

import teams_env  # noqa: F401  (registers the ids)
from teams_env.base_env import LENGTH_WORDS, instruction_length
from teams_env.env import TeaMsInstructEnv
from teams_env.llm.scripted import ScriptedBackend, novelty_score
from teams_env.replay.env import TeaMsInstructReplayEnv

TEXTS = ("Explain why the sky is blue.", "List three uses of vinegar.", "Describe a violin to a child.")
DIM = 384  # the hashing encoder's


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory):
    """Depth 3; the reviewer rewards an action only the first time an episode takes it."""
    return record_novelty_pack(tmp_path_factory, TEXTS)


def _live(**kwargs) -> TeaMsInstructEnv:
    return TeaMsInstructEnv(
        expert=ScriptedBackend(score=novelty_score),
        encoder="hashing",
        cache=None,
        seeds=list(TEXTS),
        max_steps=3,
        review_method="likelihood",
        reviewer_threshold=0.5,
        action_type="discrete",
        observe_verdicts=True,
        **kwargs,
    )


@pytest.mark.parametrize("observation", ["text", "last_action"])
def test_live_and_replayed_verdict_observations_are_equal(pack, observation):
    live = _live(observation=observation)
    replay = TeaMsInstructReplayEnv(
        pack=pack, action_type="discrete", observation=observation, observe_verdicts=True
    )
    assert live.observation_space == replay.observation_space
    verdicts = set()
    for index, text in enumerate(TEXTS):
        obs_live, _ = live.reset(options={"instruction": text})
        obs_replay, _ = replay.reset(options={"instruction": text})
        np.testing.assert_array_equal(obs_live, obs_replay)
        for step, action in enumerate((index, index, (index + 1) % 6), start=1):  # the repeat earns 0
            obs_live, reward_live, *_ = live.step(action)
            obs_replay, reward_replay, *_ = replay.step(action)
            np.testing.assert_array_equal(obs_live, obs_replay)
            assert reward_live == reward_replay
            accepted = reward_live > 0
            verdicts.add(accepted)
            if observation == "last_action":
                assert obs_live[6] == float(accepted) and obs_live[action] == 1.0
            else:
                row = obs_live[DIM + 7 * (step - 1) : DIM + 7 * step]
                assert row[action] == 1.0 and row[6] == float(accepted)
                length = obs_live[DIM + 7 * 3]
                assert length == np.float32(instruction_length(live.instruction)) and 0 < length <= 1
    assert verdicts == {True, False}


def test_the_verdict_observation_adds_a_number_per_step_and_the_length(pack):
    plain = gym.make("TeaMsInstructReplayDiscrete-v0", pack=pack)
    verdicts = gym.make("TeaMsInstructReplayDiscrete-v0", pack=pack, observe_verdicts=True)
    assert verdicts.observation_space.shape[0] == plain.observation_space.shape[0] + 3 + 1
    assert instruction_length("word " * (LENGTH_WORDS * 2)) == 1.0
