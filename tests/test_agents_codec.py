"""Portable policies: a run saves its action codec, and loading or resuming it decodes with the saved
one, so a checkpoint picks the same actions whatever signs this machine's SVD gives the axes."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from teams_env.action_codec import ActionCodec
from teams_env.encoder import SentenceEncoder
from teams_env.seeds import load_seeds
from teams_env.vector import TeaMsInstructVecEnv
from teams_rl.agents.commands import TrainConfig
from teams_rl.agents.evaluation import evaluate_agent
from teams_rl.agents.policy import load_agent, saved_codec, saved_env_kwargs
from teams_rl.agents.training.train import train

SCRIPTED = {"expert": "scripted", "encoder": "hashing", "cache": "none"}
FLIPPED_AXES = [0, 2]


def _train(tmp_path: Path, **changes: Any) -> Path:
    config = TrainConfig(
        **SCRIPTED,
        total_timesteps=32,
        n_envs=4,
        hyperparams={"n_steps": 8, "batch_size": 32},
        checkpoint_freq=32,
        out=str(tmp_path / "runs"),
        progress_bar=False,
        **changes,
    )
    return train(config)


def _flip_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every codec built from now on has some axes reversed, as another machine's SVD may give them."""
    original = ActionCodec.from_encoder.__func__  # type: ignore[attr-defined]

    def flipped(cls: type[ActionCodec], encoder: SentenceEncoder, dim: int) -> ActionCodec:
        codec = original(cls, encoder, dim)
        codec.prototypes[:, FLIPPED_AXES] *= -1
        assert codec.basis is not None
        codec.basis[FLIPPED_AXES] *= -1
        return codec

    monkeypatch.setattr(ActionCodec, "from_encoder", classmethod(flipped))


def _actions(run_dir: Path) -> list[list[str]]:
    seeds = load_seeds().seeds[:6]  # two envs: a batch of 4 and one of 2
    result = evaluate_agent(str(run_dir), seeds, SCRIPTED, n_envs=4)
    return [list(episode.actions) for episode in result.episodes]


def test_a_run_saves_the_codec_it_was_trained_with(tmp_path: Path) -> None:
    run_dir = _train(tmp_path)
    saved = ActionCodec.load(run_dir / "action_codec.json")
    env = TeaMsInstructVecEnv(2, **(saved_env_kwargs(str(run_dir)) or {}))
    try:
        assert env.envs[0].codec is not None and saved.same_as(env.envs[0].codec)
    finally:
        env.close()
    assert json.loads((run_dir / "action_codec.json").read_text())["dim"] == 5
    discrete = _train(tmp_path, algo="ppo", action_type="discrete")
    assert not (discrete / "action_codec.json").exists() and saved_codec(str(discrete)) is None


def test_a_checkpoint_decodes_identically_after_the_codec_signs_are_flipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    run_dir = _train(tmp_path)
    before = _actions(run_dir)

    _flip_signs(monkeypatch)
    kwargs = saved_env_kwargs(str(run_dir)) or {}
    env = TeaMsInstructVecEnv(4, **kwargs)
    try:
        assert env.envs[0].codec is not None
        assert not env.envs[0].codec.same_as(ActionCodec.load(run_dir / "action_codec.json"))
        with caplog.at_level(logging.INFO, logger="teams_rl.agents.policy"):
            load_agent(str(run_dir), env)
        assert "decoding actions with its saved action codec" in caplog.text
        assert all(sub.codec is not None and sub.codec.same_as(env.envs[0].codec) for sub in env.envs)
        assert env.envs[0].codec.same_as(ActionCodec.load(run_dir / "action_codec.json"))
    finally:
        env.close()
    assert _actions(run_dir) == before

    # Without the saved codec, the flipped signs do change the decisions: the test can fail.
    (run_dir / "action_codec.json").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="teams_rl.agents.policy"):
        assert _actions(run_dir) != before
    assert "no saved action codec" in caplog.text


def test_resume_keeps_the_saved_codec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = _train(tmp_path)
    saved = (run_dir / "action_codec.json").read_text()
    _flip_signs(monkeypatch)
    calls: list[ActionCodec] = []
    original = TeaMsInstructVecEnv.step_wait

    def spy(self: TeaMsInstructVecEnv) -> Any:
        calls.append(self.envs[-1].codec)  # type: ignore[arg-type]
        return original(self)

    monkeypatch.setattr(TeaMsInstructVecEnv, "step_wait", spy)
    train(TrainConfig(**SCRIPTED, resume=str(run_dir), total_timesteps=64, progress_bar=False))
    assert (run_dir / "action_codec.json").read_text() == saved
    assert calls and all(codec.same_as(ActionCodec.load(run_dir / "action_codec.json")) for codec in calls)


def test_a_codec_for_other_actions_or_spaces_is_refused(tmp_path: Path) -> None:
    run_dir = _train(tmp_path)
    file = run_dir / "action_codec.json"
    data = json.loads(file.read_text())
    file.write_text(json.dumps({**data, "actions": list(reversed(data["actions"]))}))
    with pytest.raises(ValueError, match=r"action_codec\.json: saved for the actions"):
        saved_codec(str(run_dir))
    file.write_text(json.dumps({**data, "prototypes": np.zeros((6, 3)).tolist()}))
    env = TeaMsInstructVecEnv(2, **(saved_env_kwargs(str(run_dir)) or {}))
    try:
        with pytest.raises(ValueError, match="its action codec has 3 dimensions"):
            load_agent(str(run_dir), env)
    finally:
        env.close()
