"""The packs shipped with the project: the default one loads offline from the install and passes the
checkers, and each pack is what the live env with its expert and judge does (same texts, verdicts,
probabilities and rewards)."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from teams_env import REPLAY_ENV_IDS
from teams_env.env import TeaMsInstructEnv
from teams_env.llm.llamacpp import NO_EXTRA_BUFFERS_TAG

pytestmark = pytest.mark.slow  # the encoder (and in the last test the LLM) are real models


def test_the_shipped_pack_loads_offline_in_a_fresh_process():
    code = (
        "import gymnasium as gym, teams_env; env = gym.make('TeaMsInstructReplay-v0'); "
        "obs, info = env.reset(seed=0); print(obs.shape, info['seed_id'])"
    )
    # No network: the hub is unreachable on purpose, the pack and the encoder ship in the install.
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "seed-" in done.stdout


@pytest.mark.parametrize("env_id", REPLAY_ENV_IDS)
def test_the_shipped_pack_passes_the_checkers(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    manifest = env.unwrapped.pack.manifest
    assert manifest["depth"] >= 3 and len(manifest["seeds"]) >= 144
    assert len(manifest["splits"]["train"]) >= 108 and len(manifest["splits"]["heldout"]) >= 36
    assert not set(manifest["splits"]["train"]) & set(manifest["splits"]["heldout"])


# Episodes where an earlier recording of the prompted pack (made with flash attention on, inside
# 96-request continuous batches) differed from one request at a time; the rest of each episode, and
# the other episodes, are drawn at random.
ONCE_DIVERGED = [("seed-114", 4), ("seed-016", 0), ("seed-054", 5), ("seed-031", 0)]


@pytest.mark.parametrize("pack", ["default", "prompted"])
def test_the_pack_is_what_the_live_env_does(pack):
    """Action sequences stepped live, one request at a time and without a cache, with the pack's
    expert, judge and recording settings: every step equals the replay's (recorded in batches), and
    so does the default (-v1) observation: its verdicts, actions, progress and length bit for bit.
    The default pack's expert is the specialist, whose Q5_1 adapter makes its answers independent of
    the batch (with the F16 adapter before it, 8 of 30 depth-1 rewrites differed asked alone); the
    prompted pack's is the base model."""
    replay = gym.make("TeaMsInstructReplayDiscrete-v1", pack=pack)
    manifest = replay.unwrapped.pack.manifest
    depth = manifest["depth"]
    rng = np.random.default_rng(0)
    texts = {seed["id"]: seed["text"] for seed in manifest["seeds"]}
    episodes = [(seed_id, [first, *rng.integers(6, size=depth - 1)]) for seed_id, first in ONCE_DIVERGED]
    episodes += [
        (str(seed_id), list(rng.integers(6, size=depth))) for seed_id in rng.choice(sorted(texts), 4)
    ]
    live = TeaMsInstructEnv(
        expert=replay.unwrapped.pack.expert_spec,
        reviewer_head=replay.unwrapped.pack.reviewer_head_spec,
        seeds=[texts[seed_id] for seed_id, _ in episodes],
        action_type="discrete",
        max_steps=depth,
        on_failure=manifest["on_failure"],
        review_method=manifest["review_method"],
        observe_verdicts=True,
        cache=None,
    )
    expert = live.engine.expert.backend
    # Where the llama.cpp build has AMX the live env loads plain buffers and its identity says so
    # (the pack was recorded on a CPU without AMX); the texts below must still agree step by step.
    protection = "" if expert.extra_buffers else f"-{NO_EXTRA_BUFFERS_TAG}"
    assert expert.identity == manifest["expert"] + protection
    # The encoder embeds one text here and batches of them when recording: the float16 embedding
    # may differ by one rounding step; everything after it is exact.
    dim = manifest["encoder_dim"]

    def assert_same_observation(live_obs: np.ndarray, replay_obs: np.ndarray) -> None:
        np.testing.assert_allclose(live_obs[:dim], replay_obs[:dim], atol=1e-3)
        np.testing.assert_array_equal(live_obs[dim:], replay_obs[dim:])

    paid: list[float] = []
    for seed_id, actions in episodes:
        live_obs, _ = live.reset(options={"instruction": texts[seed_id]})
        replay_obs, _ = replay.reset(options={"seed_id": seed_id})
        assert_same_observation(live_obs, replay_obs)
        for action in actions:
            live_obs, live_reward, _, _, live_info = live.step(int(action))
            replay_obs, replay_reward, _, _, replay_info = replay.step(int(action))
            assert live_info["instruction"] == replay_info["instruction"], (seed_id, actions)
            assert live_reward == replay_reward
            for key in ("verdict", "valid", "invalid_reason", "good", "state_instruction"):
                assert live_info[key] == replay_info[key], key
            paid.append(live_reward)
            # The hidden states are identical, but the head also reads MiniLM features, and the
            # encoder embeds one text alone here and batches of them when recording: embeddings
            # differ by up to ~6e-5, probabilities by ~1e-7 (measured).
            for key in ("p_not_equal", "p_valid", "p_good"):
                expected = replay_info[key]  # None where a rule decided without the head
                assert live_info[key] == (
                    expected if expected is None else pytest.approx(expected, rel=1e-5)
                ), key
            assert_same_observation(live_obs, replay_obs)
    assert set(paid) == {0.0, 1.0}  # the episodes took paid and unpaid steps alike
