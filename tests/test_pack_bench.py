"""``teams-rl bench --pack``: every agent trained and evaluated on a scripted pack, scores normalized
against the pack's exact optimum and uniform floor, resumable."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from scripted_packs import record_novelty_pack, record_topic_pack

from teams_rl.agents.benchmark.pack import bench_pack
from teams_rl.agents.benchmark.pack_summary import (
    NEAR_DUPLICATE_COSINE,
    _Embeddings,
    dataset_worth,
    headline,
    reference_scores,
    task_scores,
)
from teams_rl.agents.commands import BenchConfig

TOPICS = ("the sky", "vinegar", "a park", "tides", "bread", "rust", "a violin", "glaciers")


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight seeds to depth 3 (optimum 3 per episode)."""
    return record_novelty_pack(tmp_path_factory, tuple(f"Explain {t} to a child." for t in TOPICS))


@pytest.fixture(scope="module")
def topic_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sixteen seeds to depth 2, half held out, whose best action depends on the text."""
    return record_topic_pack(tmp_path_factory)


def _config(pack: Path, out: Path, **changes) -> BenchConfig:
    values = dict(
        pack=str(pack),
        out=str(out),
        algos=["trpo", "dqn", "uniform", "fixed", "best-fixed", "optimal"],
        variants=["discrete"],
        run_seeds=[0, 1],
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
    assert results["headline"].startswith("On held-out seeds TRPO ") and "IQM normalized score" in report
    # The audit of what the reward pays for goes with the report: rates per action, junk, samples.
    assert "## What the reward pays for" in report and "| complicate_input |" in report
    assert "## Rewarded rewrites" in (out / "audit" / "audit.md").read_text()
    for name in ("curves", "scores", "profile_train", "profile_heldout", "iqm_train", "iqm_heldout"):
        assert (out / f"{name}.png").stat().st_size > 0, name
    for split in ("train", "heldout"):
        # Every agent spends the same expert queries: one episode of 3 steps (1 query each) per seed.
        budget = {agent: stats["expert_queries"]["mean"] for agent, stats in summary[split].items()}
        assert set(budget.values()) == {3 * ceilings[split]["seeds"]}, budget
        assert summary[split]["optimal"]["iqm"]["point"] == pytest.approx(1.0)
        assert summary[split]["optimal"]["iqm"]["tasks"] == ceilings[split]["seeds"]

    # The same command again trains nothing: every run comes from the journal.
    capsys.readouterr()
    bench_pack(_config(pack, tmp_path / "bench"))
    assert "14 runs, 14 done earlier" in capsys.readouterr().out
    assert len((out / "runs.jsonl").read_text().splitlines()) == 14
    # Another seed adds only its own runs, trained in two processes.
    bench_pack(_config(pack, tmp_path / "bench", run_seeds=[0, 1, 2], jobs=2))
    assert "21 runs, 14 done earlier" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 21 and results["summary"]["train"]["optimal"]["return"]["n"] == 3
    # Fewer seeds again: the journal keeps all 21 runs, the compressed copy this result's 7.
    bench_pack(_config(pack, tmp_path / "bench", run_seeds=[2]))
    assert len((out / "runs.jsonl").read_text().splitlines()) == 21
    with gzip.open(out / "runs.jsonl.gz", "rt", encoding="utf-8") as handle:
        current = [json.loads(line) for line in handle]
    assert len(current) == 7 and {record["result"]["seed"] for record in current} == {2}


def test_headline_says_whether_the_iqm_interval_excludes_uniform():
    def summary(point: float, low: float, high: float) -> dict:
        interval = {"point": 0.5, "low": 0.4, "high": 0.6}
        iqm = {"point": point, "low": low, "high": high, "runs": 3, "tasks": 12}
        trpo = {"iqm": iqm, "p_improvement": {"uniform": interval, "best-fixed": interval}}
        fixed = {"iqm": {"point": 0.25, "low": 0.25, "high": 0.25, "runs": 3, "tasks": 12}}
        return {"heldout": {"trpo": trpo, "best-fixed": fixed}}

    sentence = headline(summary(0.4, 0.3, 0.5))
    assert "beats uniform" in sentence and "IQM normalized score 0.40" in sentence
    assert "95% stratified-bootstrap CI 0.30 to 0.50; 3 runs × 12 seeds" in sentence
    assert "P(TRPO > uniform) = 0.50 [0.40, 0.60]" in sentence and "P(TRPO > best-fixed)" in sentence
    assert "best-fixed 0.25" in sentence
    assert "not distinguishable" in headline(summary(0.05, -0.1, 0.2))
    assert "worse than uniform" in headline(summary(-0.3, -0.4, -0.2))
    assert headline(summary(0.4, 0.3, 0.5), "ppo") == "ppo was not in this bench."


def test_agents_a_pack_cannot_serve_are_one_line_errors(pack, tmp_path):
    with pytest.raises(ValueError, match="a pack bench runs SB3 algorithms"):
        bench_pack(_config(pack, tmp_path / "b", algos=["random-continuous"], variants=[]))


def _topic_config(pack: Path, out: Path, **changes) -> BenchConfig:
    algos = ["uniform", "best-fixed", "supervised", "nearest-seed", "optimal"]
    return _config(pack, out, **({"algos": algos, "variants": []} | changes))


def test_text_baselines_beat_the_best_fixed_sequence_on_held_out_seeds(topic_pack, tmp_path):
    out = bench_pack(_topic_config(topic_pack, tmp_path / "bench"))
    results = json.loads((out / "results.json").read_text())
    heldout = results["summary"]["heldout"]
    # Both topics are held out, so no fixed sequence is optimal there.
    assert results["ceilings"]["heldout"]["best_fixed"] < results["ceilings"]["heldout"]["optimal"]
    assert heldout["best-fixed"]["iqm"]["point"] < 0.6
    for agent in ("supervised", "nearest-seed"):
        score = heldout[agent]["iqm"]
        assert score["point"] == pytest.approx(1.0), agent
        assert score["low"] > heldout["best-fixed"]["iqm"]["high"], agent
        assert (score["runs"], score["tasks"]) == (2, 8)
        assert heldout[agent]["p_improvement"]["best-fixed"]["low"] > 0.5, agent
        assert heldout[agent]["p_improvement"]["uniform"]["point"] == pytest.approx(1.0), agent
    assert heldout["uniform"]["iqm"]["low"] < 0 < heldout["uniform"]["iqm"]["high"]
    assert results["headline"].startswith(
        "On held-out seeds SUPERVISED beats uniform: IQM normalized score 1.00 (95% stratified-bootstrap "
        "CI 1.00 to 1.00; 2 runs × 8 seeds)"
    )
    report = (out / "benchmark.md").read_text()
    assert results["headline"] in report
    assert (
        "| agent | runs | IQM normalized [95% CI] | P(> uniform) [95% CI] | P(> best-fixed) [95% CI] |"
        in report
    )
    assert "| nearest-seed | 2 | 1.00 [1.00, 1.00] | 1.00 [1.00, 1.00] | " in report
    assert "## Dataset worth per expert query" in report and f"≥ {NEAR_DUPLICATE_COSINE}" in report
    # Equal budgets: 8 seeds x 2 steps x 1 expert query, whatever the agent.
    for agent, stats in heldout.items():
        assert stats["expert_queries"]["mean"] == 16, agent
        assert stats["distinct_kept"]["mean"] <= stats["kept"]["mean"]
        assert stats["distinct_kept_per_query"]["mean"] == pytest.approx(stats["distinct_kept"]["mean"] / 16)
        assert stats["vendi_per_query"]["mean"] == pytest.approx(stats["vendi_kept"]["mean"] / 16)
    assert heldout["optimal"]["kept"]["mean"] == 16  # every step of an optimal episode is rewarded
    for agent in ("supervised", "nearest-seed"):
        for metric in ("distinct_kept_per_query", "vendi_per_query"):
            assert heldout[agent][metric]["mean"] > heldout["best-fixed"][metric]["mean"], (agent, metric)


def test_runs_journaled_without_per_seed_results_are_run_again(topic_pack, tmp_path, capsys):
    config = _topic_config(topic_pack, tmp_path / "bench", algos=["nearest-seed", "optimal"], run_seeds=[0])
    out = bench_pack(config)
    journal = out / "runs.jsonl"
    old, current = (json.loads(line) for line in journal.read_text().splitlines())
    for split in ("train", "heldout"):
        del old["result"][split]["seeds"]  # as journaled before per-seed results existed
    journal.write_text(json.dumps(old) + "\n" + json.dumps(current) + "\n")
    capsys.readouterr()
    bench_pack(config)
    assert "2 runs, 1 done earlier, 1 journaled without per-seed results run again" in capsys.readouterr().out
    latest = {record["key"]: record["result"] for record in map(json.loads, journal.read_text().splitlines())}
    assert all(len(result["heldout"]["seeds"]) == 8 for result in latest.values())
    results = json.loads((out / "results.json").read_text())  # compact: per-seed episodes stay in the journal
    assert all("seeds" not in run["heldout"] and "return" in run["heldout"] for run in results["runs"])
    assert results["summary"]["heldout"]["nearest-seed"]["iqm"]["point"] == pytest.approx(1.0)
    capsys.readouterr()
    bench_pack(config)
    assert "2 runs, 2 done earlier\n" in capsys.readouterr().out


class _Vectors:
    """An encoder that looks texts up in a table."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.array([self.vectors[text] for text in texts], dtype=float)


def test_dataset_worth_counts_distinct_kept_rewrites_per_expert_query():
    close = NEAR_DUPLICATE_COSINE + 0.01
    apart = NEAR_DUPLICATE_COSINE - 0.01
    vectors = {
        "a": [1, 0, 0],
        "near a": [close, np.sqrt(1 - close**2), 0],  # a near-duplicate of a
        "not near a": [apart, 0, np.sqrt(1 - apart**2)],  # just below the threshold: kept
        "b": [0, 1, 0],
        "c": [0, 0, 1],
    }
    per_seed = [
        {"seed_id": "s1", "return": 2.0, "expert_queries": 3, "kept": ["a", "near a"]},
        {"seed_id": "s2", "return": 1.0, "expert_queries": 3, "kept": ["b", "a"]},  # a again: a duplicate
        {"seed_id": "s3", "return": 2.0, "expert_queries": 4, "kept": ["c", "not near a"]},
    ]
    worth = dataset_worth(per_seed, _Embeddings(_Vectors(vectors)))
    assert worth["expert_queries"] == 10
    assert worth["distinct_kept"] == 4 and worth["distinct_kept_per_query"] == pytest.approx(0.4)
    assert 2.5 < worth["vendi_kept"] < 3 and worth["vendi_per_query"] == pytest.approx(
        worth["vendi_kept"] / 10
    )
    only_orthogonal = dataset_worth(per_seed[:2], _Embeddings(_Vectors(vectors)))
    assert only_orthogonal["distinct_kept"] == 2 and only_orthogonal["vendi_kept"] == pytest.approx(2.0)
    nothing = dataset_worth(
        [{"seed_id": "s", "return": 0.0, "expert_queries": 0, "kept": []}], _Embeddings(None)
    )
    assert (
        nothing["distinct_kept"] == 0 and nothing["vendi_kept"] == 0 and np.isnan(nothing["vendi_per_query"])
    )


def test_task_scores_normalize_each_seed_by_its_own_ceilings():
    ceiling = {
        "per_seed": {
            "s1": {"optimal": 3.0, "uniform": 1.0, "best_fixed": 2.0},
            "s2": {"optimal": 1.0, "uniform": 1.0, "best_fixed": 1.0},  # nothing to choose: no task
            "s3": {"optimal": 2.0, "uniform": 0.5, "best_fixed": 0.5},
        }
    }

    def run(r1: float, r3: float) -> dict:
        seeds = [{"seed_id": s, "return": r} for s, r in (("s1", r1), ("s2", 1.0), ("s3", r3))]
        return {"heldout": {"seeds": seeds}}

    scores = task_scores([run(2.0, 2.0), run(0.0, 1.25)], "heldout", ceiling)
    np.testing.assert_allclose(scores, [[0.5, 1.0], [-0.5, 0.5]])
    references = reference_scores(ceiling)
    np.testing.assert_allclose(references["uniform"], [[0.0, 0.0]])
    np.testing.assert_allclose(references["best-fixed"], [[0.5, 0.0]])


def test_a_policy_actor_carries_the_policys_state_through_an_episode():
    """A recurrent policy (ppo_lstm) gets back the state it returned, and a fresh one at step 0."""
    from teams_rl.agents.episodes import policy_actor

    seen = []

    class Recurrent:
        def predict(self, observation, state=None, episode_start=None, deterministic=False):
            seen.append((state, bool(episode_start[0]), deterministic))
            return np.array(len(seen)), f"memory after {len(seen)}"

    act = policy_actor(Recurrent())
    assert [int(act(None, step)) for step in (0, 1, 2, 0)] == [1, 2, 3, 4]
    assert seen == [
        (None, True, True),
        ("memory after 1", False, True),
        ("memory after 2", False, True),
        (None, True, True),
    ]


def test_a_bench_keeps_what_the_env_paid_for():
    """The dataset a bench measures is the rewrites the env paid for: a valid Not Equal rewrite the
    GOOD head refused is not kept, nor one with leaked prompt words; a pack recorded before GOOD
    heads (no ``good``) keeps what it paid."""
    from teams_rl.agents.benchmark.pack import _kept

    def step(text: str, **info) -> dict:
        return {"instruction": text, "verdict": "Not Equal", "valid": True, **info}

    episode = {
        "infos": [
            step("Paid, GOOD.", good=True),
            step("Refused by the GOOD head.", good=False),
            step("Paid before GOOD heads."),
            step("Invalid.", valid=False, good=True),
            {"instruction": "Equal.", "verdict": "Equal", "valid": True, "good": True},
            step("Write the rewritten prompt about tea.", good=True),
        ]
    }
    assert _kept([episode]) == ["Paid, GOOD.", "Paid before GOOD heads."]
