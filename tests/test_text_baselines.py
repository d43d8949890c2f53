"""The supervised and nearest-seed baselines (teams_rl.agents.baselines.text): fitted to the train seeds'
optimum of a scripted pack, acting on seeds they never saw."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from scripted_packs import TOPIC_ACTIONS, record_novelty_pack, record_topic_pack
from stable_baselines3.common.vec_env import DummyVecEnv

from teams_env.actions import ACTION_NAMES
from teams_rl.agents.baselines.oracles import env_optimum
from teams_rl.agents.baselines.registry import BASELINE_NAMES, is_baseline, make_baseline
from teams_rl.agents.baselines.text import (
    L2_GRID,
    NearestSeedAgent,
    SupervisedAgent,
    fit_softmax_regression,
    nearest_training_seeds,
    optimal_targets,
    training_env,
)

DISCRETE = "TeaMsInstructReplayDiscrete-v0"


@pytest.fixture(scope="module")
def topic_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_topic_pack(tmp_path_factory)


@pytest.fixture(scope="module")
def novelty_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_novelty_pack(tmp_path_factory, ("Explain the sky to a child.", "Explain tides to a child."))


def _topic(env: gym.Env, seed_id: str) -> str:
    text = next(seed["text"] for seed in env.unwrapped.pack.seeds if seed["id"] == seed_id)
    return next(word for word in TOPIC_ACTIONS if word in text.lower())


def _returns(env: gym.Env, agent) -> list[float]:
    """One deterministic episode from every seed of ``env``'s split."""
    totals = []
    for seed_id in env.unwrapped.seed_ids:
        observation, _ = env.reset(options={"seed_id": seed_id})
        total, done, state = 0.0, False, None
        while not done:
            action, state = agent.predict(observation, state, deterministic=True)
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        totals.append(total)
    return totals


def test_both_are_registered_baselines():
    for name in ("supervised", "nearest-seed"):
        assert name in BASELINE_NAMES and is_baseline(name)


def test_nearest_training_seed_shares_the_topic(topic_pack):
    env = gym.make(DISCRETE, pack=topic_pack, seeds="heldout")
    train = env.unwrapped.pack.split("train")
    nearest = nearest_training_seeds(env.unwrapped, train)
    for seed_id in env.unwrapped.seed_ids:
        assert nearest[seed_id] in train and nearest[seed_id] != seed_id
        assert _topic(env, nearest[seed_id]) == _topic(env, seed_id), seed_id
    assert all(nearest[seed_id] == seed_id for seed_id in train)  # a training seed is its own nearest


@pytest.mark.parametrize("name", ["supervised", "nearest-seed"])
def test_text_baselines_reach_the_optimum_on_held_out_seeds(topic_pack, name):
    env = gym.make(DISCRETE, pack=topic_pack, seeds="heldout")
    optimum = env_optimum(env.unwrapped)
    agent = make_baseline(name, env, seed=0)
    assert _returns(env, agent) == [optimum.seed_value(s) for s in env.unwrapped.seed_ids] == [2.0] * 8
    best_fixed = make_baseline("best-fixed", gym.make(DISCRETE, pack=topic_pack, seeds="train"))
    assert np.mean(_returns(env, best_fixed)) < 2.0  # reading the text is what it takes


def test_supervised_learns_from_every_node_of_the_training_trees(topic_pack):
    env = gym.make(DISCRETE, pack=topic_pack, seeds="heldout")
    agent = SupervisedAgent(env, seed=0)
    assert agent.fit.nodes == 8 * (1 + 6)  # depth 2: the root and its 6 children, per train seed
    # Cross-validated on the training seeds: every L2 strength tried, the best one kept.
    assert set(agent.fit.cross_validated) == set(L2_GRID)
    assert agent.fit.cross_validated[agent.policy.l2] == max(agent.fit.cross_validated.values()) == 2.0
    observation, _ = env.reset(options={"seed_id": env.unwrapped.seed_ids[0]})
    probabilities = agent.probabilities(observation)
    assert probabilities.shape == (1, 6) and probabilities.sum() == pytest.approx(1.0)
    wanted = ACTION_NAMES.index(TOPIC_ACTIONS[_topic(env, env.unwrapped.seed_ids[0])])
    assert probabilities.argmax() == wanted and probabilities[0, wanted] > 0.5


def test_supervised_targets_share_out_ties(novelty_pack):
    """On the novelty pack every first action is optimal: the root's target is uniform, not the
    lowest action index the optimum's best_action names."""
    env = training_env(gym.make(DISCRETE, pack=novelty_pack, seeds="all").unwrapped, "all")
    targets = optimal_targets(env, env_optimum(env))
    seed_id = env.seed_ids[0]
    np.testing.assert_allclose(targets[(seed_id, ())], np.full(6, 1 / 6))
    # After actions 0 and 1, only the four untried actions earn their reward.
    np.testing.assert_allclose(targets[(seed_id, (0, 1))], [0, 0, 0.25, 0.25, 0.25, 0.25])


def test_softmax_regression_is_deterministic_and_fits_separable_data():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 4))
    labels = (features[:, 0] > 0).astype(int) + 2 * (features[:, 1] > 0)
    targets = np.eye(4)[labels]
    weights = np.ones(60)
    first = fit_softmax_regression(features, targets, weights, l2=1e-3)
    second = fit_softmax_regression(features, targets, weights, l2=1e-3)
    np.testing.assert_array_equal(first[0], second[0])
    predicted = (features @ first[0] + first[1]).argmax(axis=1)
    assert (predicted == labels).mean() > 0.95


def test_text_baselines_act_in_vector_and_continuous_envs(topic_pack):
    venv = DummyVecEnv([lambda: gym.make(DISCRETE, pack=topic_pack, seeds="heldout")] * 3)
    for agent in (SupervisedAgent(venv, seed=0), NearestSeedAgent(venv, seed=0)):
        venv.seed(1)
        observations = venv.reset()
        state, starts, totals, finished = None, np.ones(3, bool), np.zeros(3), []
        while len(finished) < 6:
            actions, state = agent.predict(observations, state, starts, deterministic=True)
            observations, rewards, dones, _ = venv.step(actions)
            totals += rewards
            finished.extend(totals[dones].tolist())
            totals[dones] = 0.0
            starts = dones
        assert finished[:6] == [2.0] * 6, type(agent).__name__
    continuous = gym.make("TeaMsInstructReplay-v0", pack=topic_pack, seeds="heldout")
    assert _returns(continuous, make_baseline("supervised", continuous)) == [2.0] * 8


def test_sampling_follows_the_run_seed(novelty_pack):
    """At a novelty pack's root every action is optimal, so the fitted policy spreads its mass."""
    env = gym.make(DISCRETE, pack=novelty_pack, seeds="train")
    observation, _ = env.reset(options={"seed_id": env.unwrapped.seed_ids[0]})
    batch = np.repeat(observation[None], 60, axis=0)

    def draws(seed: int) -> list[int]:
        return SupervisedAgent(env, seed=seed).predict(batch, deterministic=False)[0].tolist()

    assert draws(3) == draws(3) != draws(4)
    assert len(set(draws(3))) == 6  # a softmax policy, sampled


def test_text_baselines_refuse_the_live_env(scripted_env_kwargs):
    env = gym.make("TeaMsInstructDiscrete-v0", **scripted_env_kwargs())
    for name in ("supervised", "nearest-seed"):
        with pytest.raises(ValueError, match=f"the {name} agent needs the replay env"):
            make_baseline(name, env)
