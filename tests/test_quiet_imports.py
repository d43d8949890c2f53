"""Creating an environment prints nothing the user did not ask for, and the replay env of a pack
imports no model library when the pack holds every embedding it needs."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "sentence_transformers", "bitsandbytes", "peft", "llama_cpp", "matplotlib")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_the_discrete_replay_env_loads_no_model_library():
    child = _run(
        "import sys, gymnasium as gym, teams_env\n"
        "env = gym.make('TeaMsInstructReplayDiscrete-v1')\n"
        "env.reset(seed=0); env.step(0)\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout == "[]\n" and child.stderr == ""


@pytest.mark.slow
def test_the_continuous_replay_env_loads_its_encoder_quietly():
    """Its action codec needs the encoded action prompts, so the embedded encoder loads: without
    bitsandbytes' CPU warnings or a weight-loading bar."""
    child = _run(
        "import gymnasium as gym, teams_env\n"
        "env = gym.make('TeaMsInstructReplay-v1')\n"
        "env.reset(seed=0); env.step(env.action_space.sample())\n"
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout == "" and child.stderr == ""
