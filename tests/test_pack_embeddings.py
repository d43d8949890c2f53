"""A pack's stored embeddings: written by the recorder, reused without running the encoder,
recomputed when stale or made by another encoder, kept in memory where the pack is read-only."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from teams_env.base_env import OBSERVATION_EMBEDDING_DTYPE
from teams_env.encoder import HashingEncoder
from teams_env.replay import embeddings as pack_embeddings
from teams_env.replay.embeddings import (
    EMBEDDINGS_FILE,
    load_embeddings,
    pack_texts,
    write_embeddings,
)
from teams_env.replay.env import TeaMsInstructReplayEnv
from teams_env.replay.pack import PackError, load_pack
from teams_env.replay.recording import record

SEEDS = ("Explain why the sky is blue.", "List three uses of vinegar.")


class CountingEncoder(HashingEncoder):
    """The hashing encoder, counting the texts it is asked for (from memory or not)."""

    def __init__(self, dim: int = 384) -> None:
        super().__init__(dim)
        self.texts = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return super().encode(texts)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recorded")
    seeds = root / "seeds.jsonl"
    seeds.write_text("".join(f'{{"instruction": "{text}"}}\n' for text in SEEDS), encoding="utf-8")
    return record(
        root / "pack",
        depth=1,
        progress=False,
        expert="scripted",
        encoder="hashing",
        cache=None,
        seeds=str(seeds),
        on_failure="revert",
    )


@pytest.fixture
def pack_dir(recorded: Path, tmp_path: Path) -> Path:
    """A private copy of the recorded pack (each test's directory is new to the process's tables)."""
    return Path(shutil.copytree(recorded, tmp_path / "pack"))


def test_record_writes_the_embeddings_of_every_text_a_replay_reads(pack_dir):
    pack = load_pack(pack_dir)
    texts = pack_texts(pack)
    assert set(SEEDS) <= set(texts) and {node.state for node in pack.nodes.values()} <= set(texts)
    assert {node.instruction for node in pack.nodes.values()} <= set(texts)  # failed rewrites too
    with np.load(pack_dir / EMBEDDINGS_FILE) as stored:
        assert str(stored["encoder"]) == "hashing:384" and int(stored["dim"]) == 384
        assert stored["vectors"].shape == (len(texts), 384)
        assert stored["vectors"].dtype == OBSERVATION_EMBEDDING_DTYPE
    encoder = CountingEncoder()
    table = load_embeddings(pack, encoder)
    assert encoder.texts == 0  # read from the file
    expected = HashingEncoder().encode(texts).astype(OBSERVATION_EMBEDDING_DTYPE)
    np.testing.assert_array_equal([table.vector(text) for text in texts], expected)


def test_a_replay_episode_runs_no_encoder(pack_dir):
    encoder = CountingEncoder()
    env = TeaMsInstructReplayEnv(pack=pack_dir, encoder=encoder, action_type="discrete")
    for episode in range(6):
        obs, _ = env.reset(seed=episode)
        obs, *_ = env.step(episode)
        assert obs.shape == env.observation_space.shape
    assert encoder.texts == 0


def test_last_action_observations_compute_no_embeddings(pack_dir):
    (pack_dir / EMBEDDINGS_FILE).unlink()
    encoder = CountingEncoder()
    env = TeaMsInstructReplayEnv(
        pack=pack_dir, encoder=encoder, action_type="discrete", observation="last_action"
    )
    env.reset(seed=0)
    env.step(1)
    assert encoder.texts == 0 and not (pack_dir / EMBEDDINGS_FILE).exists()


def _restamp(path: Path, **fields: object) -> None:
    """Rewrite the stored file with some of its fields replaced."""
    with np.load(path) as stored:
        content = {key: stored[key] for key in stored.files}
    np.savez_compressed(path, **{**content, **fields})


@pytest.mark.parametrize(
    "spoil",
    [
        lambda path: _restamp(path, texts_sha256="0" * 64),
        lambda path: _restamp(path, encoder="hashing:999"),
        lambda path: _restamp(path, vectors=np.zeros((1, 384), np.float16)),
        lambda path: path.write_bytes(b"not a zip file"),
    ],
    ids=["other texts", "other encoder name", "other shape", "corrupt"],
)
def test_a_stale_or_corrupt_file_is_recomputed_and_replaced(pack_dir, spoil):
    pack = load_pack(pack_dir)
    spoil(pack_dir / EMBEDDINGS_FILE)
    encoder = CountingEncoder()
    table = load_embeddings(pack, encoder)
    assert encoder.texts == len(pack_texts(pack))
    text = SEEDS[0]
    np.testing.assert_array_equal(
        table.vector(text), HashingEncoder().encode([text])[0].astype(OBSERVATION_EMBEDDING_DTYPE)
    )
    again = CountingEncoder()
    load_embeddings(pack, again)
    assert again.texts == 0  # the recomputed file was written back


def test_a_file_from_another_encoder_is_never_used(pack_dir):
    pack = load_pack(pack_dir)
    other = load_embeddings(pack, HashingEncoder(64))  # replaces the file with 64-dim vectors
    assert other.vectors.shape[1] == 64
    encoder = CountingEncoder()
    assert load_embeddings(pack, encoder).vectors.shape[1] == 384
    assert encoder.texts > 0


def test_a_read_only_pack_keeps_its_embeddings_in_memory(pack_dir, monkeypatch, caplog):
    (pack_dir / EMBEDDINGS_FILE).unlink()
    pack_dir.chmod(0o555)

    def refuse(*args: object, **kwargs: object) -> None:  # root writes through the mode bits
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pack_embeddings, "open", refuse, raising=False)
    try:
        with caplog.at_level(logging.INFO, logger="teams_env.replay.embeddings"):
            envs = [
                TeaMsInstructReplayEnv(pack=pack_dir, action_type="discrete", encoder=CountingEncoder())
                for _ in range(2)
            ]
        obs, _ = envs[1].reset(options={"instruction": SEEDS[1]})
    finally:
        pack_dir.chmod(0o755)
    expected = HashingEncoder().encode([SEEDS[1]])[0].astype(OBSERVATION_EMBEDDING_DTYPE)
    np.testing.assert_array_equal(obs[:384], expected)
    assert not (pack_dir / EMBEDDINGS_FILE).exists()
    assert [r.levelno for r in caplog.records if "cannot write" in r.getMessage()] == [logging.INFO]
    assert not list(pack_dir.glob("*.tmp"))


def test_write_embeddings_rebuilds_the_file_of_an_existing_pack(pack_dir):
    (pack_dir / EMBEDDINGS_FILE).unlink()
    assert write_embeddings(pack_dir, "hashing") == pack_dir / EMBEDDINGS_FILE
    encoder = CountingEncoder()
    load_embeddings(load_pack(pack_dir), encoder)
    assert encoder.texts == 0
    with pytest.raises(PackError, match="recorded with encoder 'hashing:384'"):
        write_embeddings(pack_dir, HashingEncoder(64))
