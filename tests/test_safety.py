"""Secrets stay in the environment: an API key never reaches logs, caches, configs or reports; and
loading a checkpoint warns that SB3 zips hold pickles."""

from __future__ import annotations

import logging

from fake_openai_server import FakeOpenAI, serve

from teams_rl.cli import main

SECRET = "sk-teams-rl-test-4f9d1c0b7a2e"


def test_an_api_key_never_reaches_the_disk_or_the_output(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    cache = tmp_path / "cache.sqlite"
    with serve(FakeOpenAI([500], answer="Describe the water cycle in three steps, with a diagram.")) as fake:
        spec = f"openai:test-model?base_url={fake.url}&backoff=0.01"
        preset = tmp_path / "preset.yml"
        preset.write_text(
            f'expert: "{spec}"\nreviewer: scripted\nencoder: hashing\ncache: "{cache}"\n'
            "train: {algo: trpo, total_timesteps: 16, n_envs: 4, reviewer_threshold: '0.5'}\n"
            "generate: {limit: 4, n_envs: 4, reviewer_threshold: '0.5'}\n",
            encoding="utf-8",
        )
        with caplog.at_level(logging.DEBUG):
            code = main(
                [
                    "pipeline",
                    "--preset",
                    str(preset),
                    "--out",
                    str(tmp_path / "run"),
                    "--stages",
                    "train,generate",
                ]
            )
        assert code == 0
        assert all(headers.get("Authorization") == f"Bearer {SECRET}" for headers in fake.headers)
    output = capsys.readouterr()
    assert SECRET not in output.out + output.err + caplog.text
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) > 10 and cache in files
    leaked = [str(path) for path in files if SECRET.encode() in path.read_bytes()]
    assert leaked == []
