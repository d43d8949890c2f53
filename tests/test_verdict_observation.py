"""The verdict observation (``observe_verdicts=True``): each past step's action and whether it was
rewarded (and, with text, the current instruction's length), bit for bit the same in the live env
and its replay."""

from __future__ import annotations

import json

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


@pytest.mark.parametrize("observation", ["text", "last_action"])
def test_the_retry_aware_order_skips_what_failed_from_the_same_instruction(pack, observation):
    """On this pack an action earns only the first time an episode takes it, and a failed step goes
    back to the instruction before it: breadth three times earns 1, breadth first and then the next
    action that has not failed earns 2 (a retry of the failed breadth is a certain 0)."""
    from teams_rl.agents.baselines.registry import make_baseline
    from teams_rl.agents.episodes import play_episodes, policy_actor

    env = TeaMsInstructReplayEnv(
        pack=pack, action_type="discrete", observation=observation, observe_verdicts=True
    )
    fixed = play_episodes(env, policy_actor(make_baseline("fixed:breadth", env)))
    retry = play_episodes(env, policy_actor(make_baseline("retry-aware:breadth,add_constraints", env)))
    assert [episode["return"] for episode in fixed] == [1.0] * len(TEXTS)
    assert [episode["return"] for episode in retry] == [2.0] * len(TEXTS)
    assert [info["action_name"] for info in retry[0]["infos"]] == ["breadth", "breadth", "add_constraints"]


def test_the_retry_aware_order_needs_the_verdicts(pack):
    from teams_rl.agents.baselines.registry import make_baseline

    with pytest.raises(ValueError, match="observe_verdicts=True"):
        make_baseline(
            "retry-aware:breadth",
            TeaMsInstructReplayEnv(pack=pack, action_type="discrete", observe_verdicts=False),
        )


def test_a_pack_bench_runs_the_retry_aware_order_on_the_verdict_observation(pack, tmp_path):
    from teams_rl.agents.benchmark.pack import bench_pack
    from teams_rl.agents.commands import BenchConfig

    options = {
        "pack": str(pack),
        "algos": ["retry-aware:breadth,add_constraints", "reference"],
        "agents": [{"name": "listed", "policy": "retry-aware:breadth,add_constraints"}],  # a name, a policy
        "run_seeds": [0],
    }
    with pytest.raises(ValueError, match="add --observe-verdicts"):
        bench_pack(BenchConfig(**options, out=str(tmp_path / "plain"), observe_verdicts=False))
    out = bench_pack(BenchConfig(**options, out=str(tmp_path / "verdicts"), observe_verdicts=True))
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["train"]["retry-aware:breadth,add_constraints"]["return"]["mean"] == pytest.approx(2.0)
    assert summary["train"]["listed"]["return"]["mean"] == pytest.approx(2.0)  # not the optimum's 3


def test_retry_aware_alone_orders_the_actions_by_how_often_the_train_seeds_rewarded_them():
    """``retry-aware`` without a list ranks the actions by their rewarded share over every step of
    the pack's train seeds (counted here path by path), most often rewarded first."""
    from itertools import product
    from pathlib import Path

    from teams_env.actions import ACTION_NAMES
    from teams_rl.agents.baselines.registry import make_baseline
    from teams_rl.agents.baselines.reward_model import rewarded_order

    small = Path(__file__).parent / "data" / "packs" / "small"
    train = TeaMsInstructReplayEnv(pack=small, seeds="train", action_type="discrete")
    paid = np.zeros(len(ACTION_NAMES))
    for seed_id in train.seed_ids:
        for depth in range(1, train.max_steps + 1):
            for path in product(range(len(ACTION_NAMES)), repeat=depth):
                paid[path[-1]] += train.transition_reward(seed_id, path)
    order = rewarded_order(train)
    assert sorted(order) == sorted(ACTION_NAMES)
    assert [paid[ACTION_NAMES.index(name)] for name in order] == sorted(paid, reverse=True)
    assert len(set(paid)) > 1  # the pack tells the actions apart

    env = TeaMsInstructReplayEnv(pack=small, action_type="discrete", observe_verdicts=True)
    agent = make_baseline("retry-aware", env)
    assert [ACTION_NAMES[index] for index in agent.priority] == order
