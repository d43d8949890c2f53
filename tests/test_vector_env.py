"""The vector environment batches the model calls of all sub-environments and behaves like N
single environments."""

from __future__ import annotations

import numpy as np
import pytest

from teams_env.env import TeaMsInstructEnv
from teams_env.llm.scripted import ScriptedBackend
from teams_env.vector import TeaMsInstructVecEnv


def test_one_batched_expert_call_and_one_reviewer_call_per_step(scripted_env_kwargs):
    backend = ScriptedBackend()
    venv = TeaMsInstructVecEnv(
        8, **scripted_env_kwargs(expert=backend, action_type="discrete", reviewer_threshold=0.5)
    )
    venv.seed(0)
    venv.reset()
    for _ in range(3):
        venv.step(np.arange(8) % 6)
    assert backend.batches["generate"] == [8, 8, 8]
    # One reviewer call per step, for every pair no validity rule decided (repeated clauses loop).
    assert len(backend.batches["score"]) == 3 and all(1 <= size <= 8 for size in backend.batches["score"])
    assert backend.batches["score"][0] == 8
    assert venv.ledger.usage("expert").queries == 24


def test_matches_single_environments_and_resets_automatically(scripted_env_kwargs):
    n, steps = 3, 8
    actions = np.random.default_rng(0).integers(0, 6, size=(steps, n))
    venv = TeaMsInstructVecEnv(n, **scripted_env_kwargs(action_type="discrete", max_steps=6))
    venv.seed(5)
    vec_obs = [venv.reset()]
    vec_rewards, vec_dones, vec_infos = [], [], []
    for row in actions:
        obs, rewards, dones, infos = venv.step(row)
        vec_obs.append(obs)
        vec_rewards.append(rewards)
        vec_dones.append(dones)
        vec_infos.append(infos)
    assert all(info["terminal_observation"].shape == obs.shape[1:] for info in vec_infos[5])
    assert dones.shape == (n,) and rewards.dtype == np.float32
    assert [bool(d.all()) for d in vec_dones] == [False] * 5 + [True] + [False] * 2

    # Each sub-environment is a single environment seeded 5 + index that is reset without a seed
    # when its episode ends: every step matches, the two after the automatic reset too.
    for index in range(n):
        env = TeaMsInstructEnv(**scripted_env_kwargs(action_type="discrete", max_steps=6))
        obs, _ = env.reset(seed=5 + index)
        np.testing.assert_allclose(obs, vec_obs[0][index])
        for step, row in enumerate(actions):
            obs, reward, terminated, truncated, info = env.step(row[index])
            vec_info = vec_infos[step][index]
            assert info["instruction"] == vec_info["instruction"]
            assert reward == vec_rewards[step][index]
            assert (terminated or truncated) == vec_dones[step][index]
            if terminated or truncated:
                np.testing.assert_allclose(obs, vec_info["terminal_observation"])
                obs, _ = env.reset()
            np.testing.assert_allclose(obs, vec_obs[step + 1][index])


def test_bad_size_is_a_clear_error(scripted_env_kwargs):
    with pytest.raises(ValueError, match="n_envs must be at least 1"):
        TeaMsInstructVecEnv(0, **scripted_env_kwargs())
