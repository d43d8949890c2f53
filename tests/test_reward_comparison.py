"""benchmarks/reward_comparison: bench runs on one pack with different rewards, side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripted_packs import record_novelty_pack

from benchmarks import common, reward_comparison
from teams_rl.agents.benchmark.pack import bench_pack
from teams_rl.agents.commands import BenchConfig


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pack = record_novelty_pack(
        tmp_path_factory,
        tuple(f"Explain {topic} to a child." for topic in ("tides", "rust", "bread", "glaciers")),
    )
    out = tmp_path_factory.mktemp("benches")
    return {
        reward: bench_pack(
            BenchConfig(
                pack=str(pack),
                out=str(out / reward.replace("*", "_")),
                algos=["uniform", "best-fixed", "optimal"],
                variants=["discrete"],
                run_seeds=[0, 1],
                budget=16,
                n_envs=2,
                reward=reward,
            )
        )
        for reward in ("reviewer", "novelty", "kept-vendi-gain")
    }


def test_agents_side_by_side_for_each_reward(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    path = reward_comparison.main([str(directory) for directory in runs.values()])
    result = json.loads(path.read_text())
    assert result["rewards"] == ["reviewer", "novelty", "kept-vendi-gain"]
    uniform = result["agents"]["uniform"]
    # Uniform sampling ignores the reward: the same episodes, so the same dataset, under each (its
    # normalized score is each reward's own).
    for worth in ("distinct_kept_per_query", "vendi_per_query"):
        assert uniform["reviewer"][worth] == uniform["novelty"][worth] == uniform["kept-vendi-gain"][worth]
    assert uniform["reviewer"]["iqm"] != uniform["novelty"]["iqm"]
    assert set(result["agents"]) >= {"uniform", "best-fixed", "optimal"}
    assert "K/Q, trained on novelty" in capsys.readouterr().out
    assert (tmp_path / "reward_comparison.md").is_file()


def test_runs_on_different_packs_are_refused(runs, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    results = json.loads((runs["novelty"] / "results.json").read_text())
    (other / "results.json").write_text(json.dumps(results | {"pack_hash": "0" * 64}))
    with pytest.raises(SystemExit, match="different packs"):
        reward_comparison.main([str(runs["reviewer"]), str(other)])
    with pytest.raises(SystemExit, match="same reward"):
        reward_comparison.main([str(runs["novelty"]), str(runs["novelty"])])
