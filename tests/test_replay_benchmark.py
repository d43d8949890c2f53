"""The replay throughput benchmark runs end to end on a tiny scripted pack (its live part, which
loads the model, skipped) and writes every field a reader of its JSON needs."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import common, replay_throughput
from teams_env.replay.recording import record


def test_replay_throughput_writes_its_table_and_json(tmp_path: Path, monkeypatch, capsys) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"instruction": "Explain why the sky is blue."}\n', encoding="utf-8")
    pack = record(
        tmp_path / "pack",
        depth=2,
        progress=False,
        expert="scripted",
        encoder="hashing",
        cache=None,
        seeds=str(seeds),
    )
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")

    path = replay_throughput.main(["--pack", str(pack), "--skip-live", "--steps", "50"])

    assert path == tmp_path / "results" / "replay_throughput.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    for key in ("benchmark", "date", "command", "machine", "pack", "replay", "recording"):
        assert result[key], key
    assert result["live"] is None and result["pack_depth"] == 2 and result["pack_nodes"] == 1 + 6 + 36
    arms = {(arm["env_id"], arm["observation"]) for arm in result["replay"]}
    assert arms == set(replay_throughput.REPLAY_ARMS)
    for arm in result["replay"]:
        assert arm["steps"] == 50 and arm["resets"] == 1 + 50 // 2 and arm["steps_per_s"] > 0
    assert result["recording"]["requests"] == 6 + 36
    assert "replay TeaMsInstructReplay-v0, text obs" in capsys.readouterr().out
    assert (tmp_path / "results" / "replay_throughput.md").is_file()
