"""The small real pack for fast tests (``tests/data/packs/small``): 12 seeds, one a domain, depth 2,
recorded with the embedded expert and judge, the shipped pack's settings:

    teams-rl record --seeds tests/data/small_pack_seeds.jsonl --depth 2 --out tests/data/packs/small \
        --on-failure revert --batch-size 384

It replays real rewrites in milliseconds with no model loaded: every embedding a replay reads is
stored with the pack, so the encoder below only has to carry the recorded name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from teams_env.encoder import HashingEncoder
from teams_env.replay.env import DEFAULT_PACK, TeaMsInstructReplayEnv
from teams_env.replay.pack import load_pack
from teams_env.replay.rewards import REWARD_NAMES
from teams_rl.agents.baselines.oracles import env_optimum

SMALL_PACK = Path(__file__).parent / "data" / "packs" / "small"


class StoredOnly(HashingEncoder):
    """The pack's encoder by name and size. It fails the test if asked to encode a text of the pack;
    other texts (the action prompts the action space is built from) get hashing vectors."""

    def __init__(self, name: str, dim: int, pack_texts: set[str]) -> None:
        super().__init__(dim)
        self._recorded_name, self._pack_texts = name, pack_texts

    @property
    def name(self) -> str:
        return self._recorded_name

    def _encode(self, texts: list[str]) -> np.ndarray:
        read = [text for text in texts if text in self._pack_texts]
        assert not read, (
            f"the replay encoded {len(read)} texts of the pack instead of reading them: {read[:2]}"
        )
        return super()._encode(texts)


@pytest.fixture(scope="module")
def stored_only() -> StoredOnly:
    pack = load_pack(SMALL_PACK)
    texts = {seed["text"] for seed in pack.seeds}
    texts |= {text for node in pack.nodes.values() for text in (node.instruction, node.state)}
    return StoredOnly(pack.manifest["encoder"], pack.manifest["encoder_dim"], texts)


def test_the_small_pack_is_a_subtree_of_the_shipped_pack():
    """A node depends only on its seed and path: recorded alone, the 12 seeds give the shipped
    pack's texts and rewards (the probabilities may move in the last digits: the encoder's batches
    differ)."""
    small, shipped = load_pack(SMALL_PACK), load_pack(DEFAULT_PACK)
    assert small.manifest["prompts_sha256"] == shipped.manifest["prompts_sha256"]
    assert small.manifest["expert"] == shipped.manifest["expert"]
    assert len(small.seeds) == 12 and small.manifest["depth"] == 2
    assert len(small.nodes) == 12 * (1 + 6 + 36)
    assert set(small.nodes) <= set(shipped.nodes)
    for key, node in small.nodes.items():
        other = shipped.nodes[key]
        assert (node.instruction, node.state, node.reward) == (
            other.instruction,
            other.state,
            other.reward,
        ), key
        for field in ("verdict", "valid", "invalid_reason"):
            assert node.info.get(field) == other.info.get(field), (key, field)
        for field in ("p_not_equal", "p_valid"):
            if node.info.get(field) is not None:
                assert node.info[field] == pytest.approx(other.info[field], rel=1e-4), (key, field)


@pytest.mark.parametrize("action_type", ["continuous", "discrete"])
@pytest.mark.parametrize("reward", REWARD_NAMES)
def test_replay_reads_every_embedding_from_the_pack(action_type, reward, stored_only):
    env = TeaMsInstructReplayEnv(pack=SMALL_PACK, action_type=action_type, encoder=stored_only, reward=reward)
    check_env(env, skip_render_check=True)
    for episode in range(6):
        env.reset(seed=episode)
        terminated = truncated = False
        while not (terminated or truncated):
            _, value, terminated, truncated, info = env.step(env.action_space.sample())
            assert np.isfinite(value) and info["instruction"]


def test_the_optimum_of_a_real_pack_beats_every_fixed_sequence(stored_only):
    """On real rewrites the instruction matters: per seed, some sequence beats the best single
    sequence for all seeds (what a policy that reads the text could win)."""
    env = TeaMsInstructReplayEnv(pack=SMALL_PACK, action_type="discrete", encoder=stored_only)
    optimum = env_optimum(env)
    assert optimum.mean_value > optimum.best_fixed_return > 0


def test_the_replay_env_pays_every_recorded_step_by_the_one_formula():
    """The live env paid each step by :func:`step_reward` when it was recorded; the replay env pays
    it again from the recorded ``info``: the same number for every node."""
    from teams_env.replay.pack import load_pack
    from teams_env.reward.formula import info_reward

    pack = load_pack(SMALL_PACK)
    penalty = float(pack.manifest.get("leak_penalty", 0.0))
    steps = [node for node in pack.nodes.values() if node.path]
    assert steps and all(info_reward(node.info, penalty) == node.reward for node in steps)
    assert {node.reward for node in steps} == {0.0, 1.0}
