"""``teams-rl train --pack``: the instructor trains on a recorded pack's replay env with the live env's
spaces, is scored on the pack's held-out seeds (``pack_eval.json``), then loads unchanged into the
live env that ``generate`` builds; the pipeline's train stage takes the option and keys it by the
pack's content."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scripted_packs import record_novelty_pack, record_topic_pack

from teams_env.env import TeaMsInstructEnv
from teams_env.replay.env import TeaMsInstructReplayEnv
from teams_env.replay.pack import SHIPPED_PACKS, pack_directory, read_manifest
from teams_env.vector import TeaMsInstructVecEnv
from teams_rl.agents.commands import GenerateConfig, TrainConfig
from teams_rl.agents.episodes import env_kwargs_for
from teams_rl.agents.policy import load_agent, saved_codec
from teams_rl.agents.training.train import train
from teams_rl.pipeline import Pipeline
from teams_rl.pipeline_config import PipelineConfig

SCRIPTED = {"expert": "scripted", "encoder": "hashing", "cache": "none"}


@pytest.fixture(scope="module")
def topic_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sixteen seeds to depth 2, half held out, whose best action depends on the text."""
    return record_topic_pack(tmp_path_factory)


def _config(pack: Path, tmp_path: Path, **changes: Any) -> TrainConfig:
    base = TrainConfig(
        pack=str(pack),
        cache="none",  # the encoder stays "default": the pack's (hashing) is used
        total_timesteps=240,  # 10 updates of 6 steps in 4 envs
        n_envs=4,
        out=str(tmp_path / "runs"),
        run_name="pack",
        progress_bar=False,
    )
    return replace(base, **changes)


@pytest.fixture(scope="module")
def pack_run(topic_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(_config(topic_pack, tmp_path_factory.mktemp("train")))


def test_a_pack_run_writes_its_held_out_normalized_score(pack_run: Path, topic_pack: Path) -> None:
    evaluation = json.loads((pack_run / "pack_eval.json").read_text())
    manifest = read_manifest(topic_pack)
    assert evaluation["pack_content_sha256"] == manifest["content_sha256"]
    assert (evaluation["depth"], evaluation["max_steps"], evaluation["timesteps"]) == (2, 2, 240)
    heldout, train_split = evaluation["splits"]["heldout"], evaluation["splits"]["train"]
    assert (heldout["seeds"], train_split["seeds"]) == (8, 8)
    # The topic reviewer rewards one action per topic: optimum 2 an episode, uniform 2/6.
    assert heldout["optimal"] == pytest.approx(2.0)
    assert heldout["uniform"] == pytest.approx(2 * 0.9 / 6, abs=0.5)
    span = heldout["optimal"] - heldout["uniform"]
    assert heldout["normalized"] == pytest.approx((heldout["return"] - heldout["uniform"]) / span)
    assert evaluation["heldout_normalized"] == heldout["normalized"]
    assert heldout["best_fixed_normalized"] == pytest.approx(
        (heldout["best_fixed"] - heldout["uniform"]) / span
    )
    assert len(evaluation["best_fixed_sequence"]) == 2
    assert [episode["seed_id"] for episode in heldout["episodes"]] == manifest["splits"]["heldout"]
    assert all(len(episode["actions"]) == 2 for episode in heldout["episodes"])

    episodes = [json.loads(line) for line in (pack_run / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 240 // 2 and all(row["length"] == 2 for row in episodes)
    assert json.loads((pack_run / "queries.json").read_text())["total"]["queries"] == 0  # no LLM
    assert (pack_run / "reward_curve.png").read_bytes().startswith(b"\x89PNG")


def test_the_pack_policy_has_the_spaces_of_the_live_env_generate_builds(
    pack_run: Path, topic_pack: Path, tmp_path: Path
) -> None:
    saved = json.loads((pack_run / "env_kwargs.json").read_text())
    manifest = read_manifest(topic_pack)
    assert (saved["encoder"], saved["max_steps"]) == (manifest["encoder_spec"], 2) == ("hashing", 2)
    assert (saved["on_failure"], saved["leak_penalty"]) == (manifest["on_failure"], manifest["leak_penalty"])

    # What generate does: its own options, with the run's spaces.
    config = GenerateConfig(**SCRIPTED, policy=str(pack_run), out=str(tmp_path / "data"))
    kwargs = env_kwargs_for(config.policy, {**config.env_kwargs(), "action_type": config.action_type})
    live = TeaMsInstructVecEnv(2, **kwargs)
    replay = TeaMsInstructReplayEnv(pack=topic_pack, seeds="heldout", max_steps=2)
    try:
        assert live.observation_space == replay.observation_space
        assert live.action_space == replay.action_space
        codec = saved_codec(str(pack_run))
        assert codec is not None and live.envs[0].codec is not None
        assert live.envs[0].codec.same_as(codec) and replay.codec is not None and replay.codec.same_as(codec)
        model = load_agent(str(pack_run), live)  # refuses other spaces
        assert model.observation_space == live.observation_space and model.action_space == live.action_space
    finally:
        live.close()

    # The observation of a seed is the same vector in both envs.
    single = TeaMsInstructEnv(**kwargs)
    seed = replay.pack.seeds[0]
    live_observation, _ = single.reset(options={"instruction": seed["text"]})
    replay_observation, _ = replay.reset(options={"seed_id": seed["id"]})
    np.testing.assert_array_equal(live_observation, replay_observation)


def test_a_pack_run_resumes_and_refuses_another_pack(
    pack_run: Path, tmp_path: Path, topic_pack: Path
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(pack_run, copy)
    resumed = train(TrainConfig(resume=str(copy), total_timesteps=360, progress_bar=False))
    assert json.loads((resumed / "pack_eval.json").read_text())["timesteps"] == 360
    with pytest.raises(ValueError, match="cannot change pack"):
        train(TrainConfig(resume=str(copy), pack="default", progress_bar=False))


def test_an_encoder_other_than_the_packs_is_refused(topic_pack: Path, tmp_path: Path) -> None:
    from teams_env.replay.pack import PackError

    with pytest.raises(PackError, match="recorded with encoder"):
        train(_config(topic_pack, tmp_path, encoder="hashing:64"))


def test_the_quick_preset_trains_on_the_shipped_pack(tmp_path: Path) -> None:
    pipeline = Pipeline(PipelineConfig(preset="quick", out=str(tmp_path / "quick")))
    config = pipeline._train_config(resume="")
    config.validate()
    assert config.pack == "default" and config.total_timesteps >= 10_000
    assert pack_directory(config.pack) == SHIPPED_PACKS / "default"
    options = pipeline._resolved_options("train")
    manifest = read_manifest(SHIPPED_PACKS / "default")
    assert options["pack_content_sha256"] == manifest["content_sha256"]


def _pipeline(tmp_path: Path, pack_dir: Path, **train_options: Any) -> Pipeline:
    preset = tmp_path / "preset.yml"
    preset.write_text(
        "expert: scripted\nencoder: hashing\ncache: none\n"
        f"train: {{pack: '{pack_dir}', total_timesteps: 120, n_envs: 4}}\n",
        encoding="utf-8",
    )
    return Pipeline(
        PipelineConfig(preset=str(preset), out=str(tmp_path / "run"), stages=["train"], train=train_options)
    )


def test_the_train_stage_is_keyed_by_the_packs_content(
    topic_pack: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    place = tmp_path / "pack"
    shutil.copytree(topic_pack, place)
    before = _pipeline(tmp_path, place)._resolved_options("train")
    other = record_novelty_pack(tmp_path_factory, ("Explain tides.", "Explain rust."))
    shutil.rmtree(place)
    shutil.copytree(other, place)
    after = _pipeline(tmp_path, place)._resolved_options("train")
    assert before["pack"] == after["pack"] and before["pack_content_sha256"] != after["pack_content_sha256"]

    live = _pipeline(tmp_path, place, pack="")._resolved_options("train")
    assert "pack" not in live and "pack_content_sha256" not in live  # live runs keep their fingerprints


def test_the_pipeline_reports_the_held_out_score(topic_pack: Path, tmp_path: Path, capsys) -> None:
    report = _pipeline(tmp_path, topic_pack).run()
    marker = json.loads((tmp_path / "run" / ".stages" / "train.json").read_text())
    heldout = marker["pack_eval"]["splits"]["heldout"]
    assert marker["episode_length"] == 2 and "episodes" not in heldout
    text = report.read_text()
    assert "Trained on the recorded pack" in text and "mean return (paid rewrites of 2)" in text
    assert f"| held-out (8) | {heldout['return']:.3f} |" in text
    assert "| train (8) |" in text and "best fixed" in text
    capsys.readouterr()
    _pipeline(tmp_path, topic_pack).run()
    assert "train is complete" in capsys.readouterr().out


def test_a_policy_trained_on_the_verdict_observation_carries_it_to_the_live_env(topic_pack, tmp_path):
    """``--observe-verdicts``: training on the pack, its evaluation, and the live env that generate
    builds all see each step's verdict, so the policy loads unchanged."""
    run = train(_config(topic_pack, tmp_path, observe_verdicts=True, total_timesteps=48))
    saved = json.loads((run / "env_kwargs.json").read_text())
    assert saved["observe_verdicts"] is True
    config = GenerateConfig(**SCRIPTED, policy=str(run), out=str(tmp_path / "data"))
    kwargs = env_kwargs_for(config.policy, {**config.env_kwargs(), "action_type": config.action_type})
    assert kwargs["observe_verdicts"] is True
    live = TeaMsInstructVecEnv(2, **kwargs)
    try:
        model = load_agent(str(run), live)  # refuses other spaces
        assert model.observation_space.shape == (384 + 7 * 2 + 2,)
    finally:
        live.close()
