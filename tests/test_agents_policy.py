"""Baselines and load_agent: every spec gives an agent with SB3's batched predict, and bad specs or
files give one-line errors naming what was wrong."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

from teams_env.actions import ACTION_NAMES
from teams_env.vector import TeaMsInstructVecEnv
from teams_rl.agents.baselines.simple import (
    REFERENCE_SEQUENCE,
    FixedSequenceAgent,
    RandomContinuousAgent,
    UniformRandomAgent,
)
from teams_rl.agents.policy import Agent, load_agent, saved_env_kwargs

EnvFactory = Callable[..., TeaMsInstructVecEnv]


@pytest.fixture
def make_env(scripted_env_kwargs: Callable[..., dict[str, Any]]) -> Iterator[EnvFactory]:
    envs: list[TeaMsInstructVecEnv] = []

    def make(action_type: str = "continuous", n_envs: int = 4) -> TeaMsInstructVecEnv:
        env = TeaMsInstructVecEnv(n_envs, **scripted_env_kwargs(action_type=action_type))
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


def _decoded(env: TeaMsInstructVecEnv, actions: np.ndarray) -> list[str]:
    return [ACTION_NAMES[env.envs[0].decode_action(action)] for action in actions]


def _roll(agent: Agent, env: TeaMsInstructVecEnv, steps: int) -> list[list[str]]:
    """The decoded actions of each step, passing state and episode starts back as SB3 does."""
    observation = env.reset()
    state, episode_start = None, np.ones(env.num_envs, dtype=bool)
    taken = []
    for _ in range(steps):
        actions, state = agent.predict(observation, state=state, episode_start=episode_start)
        taken.append(_decoded(env, actions))
        observation, _, episode_start, _ = env.step(actions)
    return taken


@pytest.mark.parametrize("action_type", ["continuous", "discrete"])
def test_uniform_agent_draws_every_action_about_equally(make_env: EnvFactory, action_type: str) -> None:
    env = make_env(action_type)
    agent = UniformRandomAgent(env, seed=0)
    observation = env.reset()
    counts: Counter[str] = Counter()
    for _ in range(300):
        actions, _ = agent.predict(observation)
        expected_shape = (4, 5) if action_type == "continuous" else (4,)
        assert actions.shape == expected_shape
        counts.update(_decoded(env, actions))
    # 1200 draws: each action's share is 1/6 with a standard deviation of about 0.011.
    assert set(counts) == set(ACTION_NAMES)
    assert all(abs(count / 1200 - 1 / 6) < 0.05 for count in counts.values())


def test_fixed_sequence_follows_its_list_and_restarts_with_each_episode(make_env: EnvFactory) -> None:
    env = make_env("continuous", n_envs=2)
    sequence = ["deepening", "breadth", "complicate_input"]
    taken = _roll(FixedSequenceAgent(env, sequence), env, steps=12)
    expected = [sequence[step % 3] for step in range(6)] * 2  # episodes are 6 steps long
    assert [step[0] for step in taken] == expected
    assert [step[1] for step in taken] == expected


def test_reference_pattern_forces_breadth_at_steps_1_and_4(make_env: EnvFactory) -> None:
    env = make_env("discrete", n_envs=3)
    taken = _roll(load_agent("reference", env), env, steps=6)
    assert [step[0] for step in taken] == list(REFERENCE_SEQUENCE)
    assert [i for i, step in enumerate(taken) if step[0] == "breadth"] == [1, 4]


def test_a_single_observation_gives_a_single_action(make_env: EnvFactory) -> None:
    env = make_env("continuous")
    observation = env.reset()[0]
    action, state = load_agent("fixed:concretizing", env).predict(observation)
    assert action.shape == (5,)
    assert ACTION_NAMES[env.envs[0].decode_action(action)] == "concretizing"
    assert state.shape == (1,)


def test_random_continuous_samples_the_box(make_env: EnvFactory) -> None:
    env = make_env("continuous")
    agent = RandomContinuousAgent(env, seed=1)
    actions, _ = agent.predict(env.reset())
    assert isinstance(env.action_space, spaces.Box)
    assert env.action_space.contains(actions[0])
    assert len({tuple(action) for action in actions}) == 4
    with pytest.raises(ValueError, match="needs the continuous environment"):
        load_agent("random-continuous", make_env("discrete"))


def test_bad_baseline_specs(make_env: EnvFactory) -> None:
    env = make_env("discrete")
    with pytest.raises(ValueError, match="fixed action sequence needs names from"):
        load_agent("fixed:breadth,widening", env)
    with pytest.raises(ValueError, match=r"not a run directory, a \.zip checkpoint"):
        load_agent("greedy", env)
    assert saved_env_kwargs("uniform") is None
    assert saved_env_kwargs("fixed:breadth") is None


def test_custom_agent_class_from_a_file(make_env: EnvFactory, tmp_path: Path) -> None:
    file = tmp_path / "my_agent.py"
    file.write_text(
        "import numpy as np\n"
        "class AlwaysDeepen:\n"
        "    def __init__(self, env, seed):\n"
        "        self.n = env.num_envs\n"
        "    def predict(self, observation, state=None, episode_start=None, deterministic=False):\n"
        "        return np.full(len(observation), 2), state\n"
        "class NoPredict:\n"
        "    def __init__(self, env, seed):\n"
        "        pass\n"
    )
    env = make_env("discrete")
    agent = load_agent(f"{file}:AlwaysDeepen", env, seed=3)
    assert _roll(agent, env, steps=1) == [["deepening"] * 4]
    assert saved_env_kwargs(f"{file}:AlwaysDeepen") is None
    with pytest.raises(ValueError, match="has no predict"):
        load_agent(f"{file}:NoPredict", env)
    with pytest.raises(ValueError, match="has no class 'Missing'"):
        load_agent(f"{file}:Missing", env)
    with pytest.raises(FileNotFoundError, match="agent file not found"):
        load_agent(f"{tmp_path / 'absent.py'}:Agent", env)
    with pytest.raises(ValueError, match="cannot import module 'no_such_module'"):
        load_agent("no_such_module:Agent", env)


def test_checkpoint_specs_that_cannot_load(
    make_env: EnvFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = make_env("continuous")
    corrupt = tmp_path / "model.zip"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_agent("trpo:" + str(tmp_path / "missing.zip"), env)
    with pytest.raises(ValueError, match=r"no run config\.yaml next to it says which algorithm"):
        load_agent(str(corrupt), env)
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError) as error:
        load_agent(f"trpo:{corrupt}", env)
    assert str(error.value).startswith(f"{corrupt}: not a usable trpo checkpoint")
    assert "\n" not in str(error.value)
    assert "pickled Python objects" in caplog.text
    with pytest.raises(FileNotFoundError, match="not a training run directory"):
        load_agent(str(tmp_path), env)
