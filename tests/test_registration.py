"""Every registered id of ours passes Gymnasium's and SB3's environment checkers."""

from __future__ import annotations

import os
import subprocess
import sys

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from teams_env import ENV_IDS, REPLAY_ENV_IDS, env_id


def test_registered_on_import():
    ours = {env_id for env_id in gym.registry if env_id.startswith("TeaMsInstruct")}
    assert ours == set(ENV_IDS) | set(REPLAY_ENV_IDS)  # the replay ids are checked in test_replay.py
    assert len(ours) == 8


def test_v1_observes_verdicts_with_the_same_dynamics(scripted_env_kwargs):
    v0 = gym.make("TeaMsInstructDiscrete-v0", **scripted_env_kwargs()).unwrapped
    v1 = gym.make("TeaMsInstructDiscrete-v1", **scripted_env_kwargs()).unwrapped
    assert not v0.observe_verdicts and v1.observe_verdicts
    assert v1.observation_space.shape[0] == v0.observation_space.shape[0] + v0.max_steps + 1
    assert v0.on_failure == v1.on_failure == "revert"
    assert env_id("discrete", observe_verdicts=True, replay=True) == "TeaMsInstructReplayDiscrete-v1"
    with pytest.raises(ValueError, match="action_type"):
        env_id("hybrid")


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("observation", ["text", "last_action"])
@pytest.mark.parametrize("observe_verdicts", [False, True])
def test_checkers_pass_on_scripted_backend(env_id, observation, observe_verdicts, scripted_env_kwargs):
    env = gym.make(env_id, **scripted_env_kwargs(observation=observation, observe_verdicts=observe_verdicts))
    gym_check_env(env.unwrapped, skip_render_check=False)
    sb3_check_env(env.unwrapped, warn=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_module_path_syntax_works_without_import(env_id):
    code = (
        "import gymnasium as gym\n"
        f"env = gym.make('teams_env:{env_id}', expert='scripted', encoder='hashing', cache=None)\n"
        "obs, info = env.reset(seed=0)\n"
        "print(obs.shape, info['seed_id'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "seed-" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_checkers_pass_on_the_embedded_model(env_id):
    # The LLM cache (a session file, see conftest) makes repeated seeded steps identical, as
    # Gymnasium's determinism check requires.
    env = gym.make(env_id)
    gym_check_env(env.unwrapped)
    sb3_check_env(env.unwrapped, warn=True)


@pytest.mark.slow
def test_readme_one_liner_works_offline():
    code = "import gymnasium as gym, teams_env; env = gym.make('TeaMsInstruct-v0'); print(env.reset(seed=0))"
    environment = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=environment
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'seed_id': 'seed-" in result.stdout
