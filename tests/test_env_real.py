"""The environment on the real embedded model: rewrites, rewards, and reproducible reruns."""

from __future__ import annotations

import pytest

from teams_env.env import TeaMsInstructEnv
from teams_env.vector import TeaMsInstructVecEnv

pytestmark = pytest.mark.slow


def run_episode(env: TeaMsInstructEnv, seed: int) -> list[dict]:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    infos, done = [], False
    while not done:
        _, reward, terminated, _, info = env.step(env.action_space.sample())
        assert reward in (0.0, 1.0)
        infos.append(info)
        done = terminated
    return infos


def test_an_episode_rewrites_the_instruction(tmp_path):
    env = TeaMsInstructEnv(cache=tmp_path / "cache.sqlite")
    infos = run_episode(env, seed=1)
    assert len(infos) == 6
    assert all(info["instruction"].strip() for info in infos)
    changed = [info for info in infos if info["rewrite_failure"] is None]
    assert len(changed) >= 3
    assert all(info["instruction"] != info["previous_instruction"] for info in changed)
    # The default reviewer is the review head (one forward pass), or a rule that needs no model.
    assert all(info["review_method"] in ("head", "rule") for info in changed)
    assert any(info["review_method"] == "head" for info in changed)
    assert all((info["p_valid"] is None) == (info["review_method"] == "rule") for info in changed)
    expert = env.ledger.usage("expert")  # a rewrite asked twice in one episode is a cache hit
    assert expert.queries + expert.cache_hits == 6


def test_same_seed_and_cache_give_identical_trajectories_with_no_new_queries(tmp_path):
    cache = tmp_path / "cache.sqlite"
    first_env = TeaMsInstructEnv(cache=cache)
    first = [run_episode(first_env, seed) for seed in (3, 4)]
    second_env = TeaMsInstructEnv(cache=cache)
    second = [run_episode(second_env, seed) for seed in (3, 4)]
    assert first == second
    assert second_env.ledger.total().queries == 0
    assert second_env.ledger.usage("expert").cache_hits == 12


def test_vector_env_runs_on_the_real_model(tmp_path):
    venv = TeaMsInstructVecEnv(4, action_type="discrete", cache=tmp_path / "cache.sqlite")
    venv.seed(0)
    venv.reset()
    _, rewards, _, infos = venv.step([0, 1, 2, 3])
    assert rewards.shape == (4,)
    assert [info["action_name"] for info in infos] == [
        "breadth",
        "add_constraints",
        "deepening",
        "concretizing",
    ]
    assert venv.ledger.usage("expert").queries == 4
