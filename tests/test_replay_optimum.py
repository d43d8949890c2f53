"""The exact optimum by dynamic programming: a hand-built tree with a known answer, then the
``optimal`` and ``best-fixed`` agents on a pack recorded with the scripted backend."""

from __future__ import annotations

import itertools
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from scripted_packs import record_novelty_pack
from stable_baselines3.common.vec_env import DummyVecEnv

from teams_env.replay.optimum import sequence_returns, solve, uniform_returns
from teams_rl.agents.baselines.oracles import env_optimum
from teams_rl.agents.baselines.registry import make_baseline

# Two actions, depth 2. Greedy takes action 0 first on seed A (1 > 0) and ends with 1; the optimum
# goes 1 then 0 for 3. The best fixed sequence (0, 1) is optimal on B only.
TREE = {
    "A": {(0,): 1, (1,): 0, (0, 0): 0, (0, 1): 0, (1, 0): 3, (1, 1): 0},
    "B": {(0,): 1, (1,): 0, (0, 0): 0, (0, 1): 2, (1, 0): 0, (1, 1): 0},
}


def _reward(seed_id: str, path: tuple[int, ...]) -> float:
    return float(TREE[seed_id][path])


def test_dynamic_programming_on_a_hand_built_tree():
    optimum = solve(_reward, ["A", "B"], n_actions=2, horizon=2)
    assert optimum.seed_value("A") == 3 and optimum.seed_value("B") == 3 and optimum.mean_value == 3
    assert optimum.best_action[("A", ())] == 1 and optimum.best_action[("A", (1,))] == 0
    assert optimum.best_action[("B", ())] == 0 and optimum.best_action[("B", (0,))] == 1
    assert optimum.best_action[("A", (0,))] == 0  # a tie goes to the lowest action
    assert optimum.values[("A", (0,))] == 0 and optimum.values[("B", (1,))] == 0
    assert optimum.best_fixed == (0, 1)
    assert optimum.fixed_returns == {"A": 1.0, "B": 3.0} and optimum.best_fixed_return == 2.0


def test_a_fixed_sequences_return_on_the_hand_built_tree():
    assert sequence_returns(_reward, ["A", "B"], (0, 1)) == solve(_reward, ["A", "B"], 2, 2).fixed_returns
    assert sequence_returns(_reward, ["A", "B"], (1, 0)) == {"A": 3.0, "B": 0.0}
    assert sequence_returns(_reward, ["A"], (1, 0), gamma=0.5) == {"A": 1.5}
    assert sequence_returns(_reward, ["A"], (0,)) == {"A": 1.0}


def test_uniform_expected_return_on_the_hand_built_tree():
    # A: mean of first rewards (1 + 0) / 2, then the mean of each pair below: (0 + 0) / 2, (3 + 0) / 2.
    returns = uniform_returns(_reward, ["A", "B"], n_actions=2, horizon=2)
    assert returns == pytest.approx({"A": 0.5 + 0.5 * (0 + 1.5), "B": 0.5 + 0.5 * (1 + 0)})


def test_dynamic_programming_with_a_discount():
    optimum = solve(_reward, ["A", "B"], n_actions=2, horizon=2, gamma=0.5)
    assert optimum.seed_value("A") == 1.5 and optimum.best_action[("A", ())] == 1
    assert optimum.seed_value("B") == 2.0
    assert optimum.best_fixed == (0, 1) and optimum.fixed_returns == {"A": 1.0, "B": 2.0}
    # Horizon 1: one step, the best first reward.
    short = solve(_reward, ["A", "B"], n_actions=2, horizon=1)
    assert short.mean_value == 1 and short.best_fixed == (0,)


def test_bad_arguments():
    with pytest.raises(ValueError, match="horizon"):
        solve(_reward, ["A"], n_actions=2, horizon=0)
    with pytest.raises(ValueError, match="no seeds"):
        solve(_reward, [], n_actions=2, horizon=1)


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three seeds to depth 3 (optimum 3 per episode, uniform actions about 2.53)."""
    return record_novelty_pack(
        tmp_path_factory,
        ("Explain why the sky is blue.", "List three uses of vinegar.", "Describe a city park."),
    )


def _brute_force(env) -> dict[str, float]:
    """Each seed's best return, by trying every action sequence."""
    best = {}
    for seed_id in env.seed_ids:
        best[seed_id] = max(
            sum(env.transition_reward(seed_id, actions[: t + 1]) for t in range(env.max_steps))
            for actions in itertools.product(range(6), repeat=env.max_steps)
        )
    return best


def _mean_return(env, agent, episodes: int) -> tuple[float, list[float]]:
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        state, start, done, total = None, np.array([True]), False, 0.0
        while not done:
            action, state = agent.predict(obs[None], state, start)
            obs, reward, terminated, truncated, _ = env.step(action[0])
            total += reward
            start, done = np.array([False]), terminated or truncated
        returns.append(total)
    return float(np.mean(returns)), returns


@pytest.mark.parametrize("reward", ["reviewer", "novelty"])
def test_optimum_of_a_pack_matches_brute_force(pack, reward):
    env = gym.make("TeaMsInstructReplayDiscrete-v0", pack=pack, reward=reward).unwrapped
    optimum = env_optimum(env)
    assert {s: optimum.seed_value(s) for s in env.seed_ids} == pytest.approx(_brute_force(env))
    if reward == "reviewer":
        assert optimum.mean_value == 3.0


@pytest.mark.parametrize("env_id", ["TeaMsInstructReplayDiscrete-v0", "TeaMsInstructReplay-v0"])
def test_optimal_and_best_fixed_agents_reach_their_ceilings(pack, env_id):
    env = gym.make(env_id, pack=pack)
    optimum = env_optimum(env.unwrapped)
    optimal, returns = _mean_return(env, make_baseline("optimal", env), 12)
    assert returns == [3.0] * 12 and optimal == optimum.mean_value
    best_fixed_agent = make_baseline("best-fixed", env)
    assert tuple(best_fixed_agent.sequence) == optimum.best_fixed
    best_fixed, _ = _mean_return(env, best_fixed_agent, 12)
    assert best_fixed == pytest.approx(optimum.best_fixed_return)
    uniform, _ = _mean_return(env, make_baseline("uniform", env), 60)
    assert uniform < best_fixed <= optimal


def test_optimal_agent_in_a_vector_env(pack):
    venv = DummyVecEnv(
        [lambda: gym.make("TeaMsInstructReplayDiscrete-v0", pack=pack, observation="last_action")] * 3
    )
    agent = make_baseline("optimal", venv)
    venv.seed(0)
    obs = venv.reset()
    state, starts, totals, finished = None, np.ones(3, bool), np.zeros(3), []
    while len(finished) < 6:
        actions, state = agent.predict(obs, state, starts)
        obs, rewards, dones, _ = venv.step(actions)
        totals += rewards
        finished.extend(totals[dones].tolist())
        totals[dones] = 0.0
        starts = dones
    assert finished[:6] == [3.0] * 6


def test_oracles_refuse_the_live_env(scripted_env_kwargs):
    env = gym.make("TeaMsInstructDiscrete-v0", **scripted_env_kwargs())
    with pytest.raises(ValueError, match="needs the replay env"):
        make_baseline("optimal", env)
