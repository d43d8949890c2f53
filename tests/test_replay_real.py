"""The pack shipped with the project: it loads offline from the install, passes the checkers, and is
judged as the live env judges; the prompted pack is what the live env on the embedded model does
(same texts, verdicts, probabilities and rewards)."""

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


# Episodes where an earlier recording (made with flash attention on, inside 96-request continuous
# batches) differed from one request at a time; the rest of each episode is drawn at random.
ONCE_DIVERGED = [("seed-114", 4), ("seed-016", 0), ("seed-054", 5), ("seed-031", 0)]


def test_the_prompted_pack_is_what_the_live_env_does():
    """Action sequences stepped live on the embedded model, one request at a time and without a
    cache, with the pack's recording settings: every step equals the replay's, and so does the
    default (-v1) observation: its verdicts, actions, progress and length bit for bit. (The prompted
    expert is the base model, whose answers do not depend on the batch; the specialist's do: see
    the test below.)"""
    replay = gym.make("TeaMsInstructReplayDiscrete-v1", pack="prompted")
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


def test_the_shipped_pack_is_judged_as_the_live_env_judges():
    """The shipped pack's rewrites come from the specialist, whose llama.cpp answers move with the
    batch they are decoded in (measured: 8 of 30 depth-1 rewrites differ asked alone; probably
    the LoRA adapter's matmuls), so a live episode can leave the recorded tree. Its judge is the base model, which does
    not: every recorded rewrite, judged live one pair at a time without a cache, gets the pack's
    verdict, validity, GOOD call and reward."""
    from teams_env.engine import Rewrite
    from teams_env.replay.pack import load_pack

    pack = load_pack("default")
    rng = np.random.default_rng(0)
    steps = [node for node in pack.nodes.values() if node.path]
    paid = [node for node in steps if node.reward > 0]
    unpaid = [node for node in steps if node.reward == 0]
    chosen = [paid[i] for i in rng.choice(len(paid), 6, replace=False)]
    chosen += [unpaid[i] for i in rng.choice(len(unpaid), 6, replace=False)]
    live = TeaMsInstructEnv(
        expert=pack.expert_spec,
        reviewer_head=pack.reviewer_head_spec,
        review_method=pack.manifest["review_method"],
        action_type="discrete",
        cache=None,
    )
    for node in chosen:
        before = pack.node(node.seed_id, node.path[:-1]).state
        rewrite = Rewrite(
            node.instruction, node.info.get("rewrite_failure"), bool(node.info.get("rewrite_cut_off"))
        )
        [judgement] = live.engine.judge([(before, rewrite)], [node.path[-1]])
        assert (judgement.verdict, judgement.valid, judgement.invalid_reason, judgement.good) == (
            node.info["verdict"],
            node.info["valid"],
            node.info["invalid_reason"],
            node.info["good"],
        ), node.key
        assert float(judgement.rewarded) == node.reward, node.key
        for key in ("p_not_equal", "p_valid", "p_good"):
            expected = node.info[key]
            assert getattr(judgement, key) == (
                expected if expected is None else pytest.approx(expected, rel=1e-5)
            ), (node.key, key)
