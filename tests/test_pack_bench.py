"""``teams-rl bench --pack``: every agent trained and evaluated on a scripted pack, scores normalized
against the pack's exact optimum and uniform floor, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripted_packs import record_novelty_pack

from agents.config import BenchConfig
from agents.pack_bench import bench_pack, headline

TOPICS = ("the sky", "vinegar", "a park", "tides", "bread", "rust", "a violin", "glaciers")


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight seeds to depth 3 (optimum 3 per episode)."""
    return record_novelty_pack(tmp_path_factory, tuple(f"Explain {t} to a child." for t in TOPICS))


def _config(pack: Path, out: Path, **changes) -> BenchConfig:
    values = dict(
        pack=str(pack),
        out=str(out),
        algos=["trpo", "dqn", "uniform", "fixed", "best-fixed", "optimal"],
        variants=["discrete"],
        seeds=[0, 1],
        budget=96,
        n_envs=4,
    )
    return BenchConfig(**(values | changes))


def test_every_agent_is_scored_against_the_exact_ceilings(pack, tmp_path, capsys):
    out = bench_pack(_config(pack, tmp_path / "bench"))
    results = json.loads((out / "results.json").read_text())
    summary, ceilings = results["summary"], results["ceilings"]
    assert set(summary["train"]) == {
        "trpo",
        "trpo/discrete",
        "dqn",
        "uniform",
        "reference",
        "best-fixed",
        "optimal",
    }
    for split in ("train", "heldout"):
        assert ceilings[split]["optimal"] == pytest.approx(3.0)
        assert ceilings[split]["uniform"] < ceilings[split]["best_fixed"] <= ceilings[split]["optimal"]
        optimal = summary[split]["optimal"]
        assert optimal["return"]["mean"] == pytest.approx(3.0)
        assert optimal["normalized"]["mean"] == pytest.approx(1.0)
        assert optimal["return"]["n"] == 2
        for agent, stats in summary[split].items():
            assert stats["normalized"]["mean"] <= 1.0 + 1e-9, agent
    # Runs, curves and diversity are there for every run.
    assert len(results["runs"]) == 14
    assert all(len(run["curve"]) == 20 for run in results["runs"] if run["agent"] == "trpo")
    assert results["summary"]["diversity_subsample_size"]["train"] >= 2
    report = (out / "benchmark.md").read_text()
    assert results["headline"] in report and "Held-out seeds" in report
    assert (out / "curves.png").stat().st_size > 0 and (out / "scores.png").stat().st_size > 0

    # The same command again trains nothing: every run comes from the journal.
    capsys.readouterr()
    bench_pack(_config(pack, tmp_path / "bench"))
    assert "14 runs, 14 done earlier" in capsys.readouterr().out
    assert len((out / "runs.jsonl").read_text().splitlines()) == 14
    # Another seed adds only its own runs, trained in two processes.
    bench_pack(_config(pack, tmp_path / "bench", seeds=[0, 1, 2], jobs=2))
    assert "21 runs, 14 done earlier" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 21 and results["summary"]["train"]["optimal"]["return"]["n"] == 3


def test_headline_says_whether_the_interval_excludes_uniform():
    def summary(mean: float, ci95: float) -> dict:
        return {"heldout": {"trpo": {"normalized": {"mean": mean, "ci95": ci95, "n": 10}}}}

    assert "beats uniform" in headline(summary(0.4, 0.1))
    assert "not distinguishable" in headline(summary(0.05, 0.1))
    assert "worse than uniform" in headline(summary(-0.3, 0.1))


def test_agents_a_pack_cannot_serve_are_one_line_errors(pack, tmp_path):
    with pytest.raises(ValueError, match="a pack bench runs SB3 algorithms"):
        bench_pack(_config(pack, tmp_path / "b", algos=["random-continuous"], variants=[]))
