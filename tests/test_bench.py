"""The bench command on the scripted backend: table, JSON and plots agree; bad input is clear."""

from __future__ import annotations

import json
import re

import pytest

from teams_env.options import ConfigError, build
from teams_rl.agents.benchmark.live import bench
from teams_rl.agents.benchmark.roster import bench_agents
from teams_rl.agents.commands import BenchConfig


def config(tmp_path, **overrides) -> BenchConfig:
    options = {
        "algos": ["trpo", "uniform"],
        "variants": [],
        "run_seeds": [0, 1],
        "budget": 48,
        "n_envs": 4,
        "eval_offset": 100,
        "eval_limit": 8,
        "expert": "scripted",
        "encoder": "hashing",
        "cache": "none",
        "reviewer_threshold": 0.5,
        "out": str(tmp_path / "bench"),
    }
    options.update(overrides)
    return BenchConfig(**options)


def test_bench_writes_a_consistent_table_json_and_plots(tmp_path):
    out = bench(config(tmp_path))
    results = json.loads((out / "results.json").read_text())
    assert [a["name"] for a in results["agents"]] == ["trpo", "uniform"]
    assert len(results["runs"]) == 4 and {r["seed"] for r in results["runs"]} == {0, 1}
    for name in ("trpo", "uniform"):
        runs = [r for r in results["runs"] if r["agent"] == name]
        cell = results["summary"][name]["mean_episode_reward"]
        assert cell["n"] == 2
        assert cell["mean"] == pytest.approx(sum(r["mean_episode_reward"] for r in runs) / 2)
        frequencies = results["summary"][name]["action_frequencies_by_step"]
        assert len(frequencies) == 6 and all(sum(row) == pytest.approx(1.0) for row in frequencies)
    trpo_runs = [r for r in results["runs"] if r["agent"] == "trpo"]
    assert all(r["train_reviewer_queries"] > 0 for r in trpo_runs)
    assert all(r["train_reviewer_queries"] == 0 for r in results["runs"] if r["agent"] == "uniform")

    report = (out / "benchmark.md").read_text()
    assert "mean over 2 seed(s) (0, 1)" in report
    row = re.search(  # two runs: no Student's t interval (it would be wider than the data)
        r"\| uniform \| ([0-9.]+) \| n/a \(< 5 runs\) \| 2 \|", report.split("### mean episode reward")[1]
    )
    assert row and float(row.group(1)) == pytest.approx(
        results["summary"]["uniform"]["mean_episode_reward"]["mean"], abs=1e-3
    )
    for plot in ("reward_curves.png", "diversity.png", "action_heatmap.png"):
        assert (out / plot).stat().st_size > 5000

    # Size-controlled diversity: every run on random subsets of the fewest rewrites any run kept.
    size = results["diversity_subsample_size"]
    assert size == min(len(r["kept"]) for r in results["runs"] if len(r["kept"]) >= 2)
    for run in results["runs"]:
        assert run["items"] == len(run["kept"])
        if run["items"] >= 2:
            assert run["vendi_subsample_size"] == size
            assert run["vendi_subsampled"] <= min(run["vendi_score"], size) + 1e-9
    assert f"### Vendi score of {size} random kept rewrites" in report
    assert "### Vendi score of all kept rewrites, raw (grows with n = rewrites kept" in report


def test_a_rerun_reuses_finished_runs_and_retrains_an_interrupted_one(tmp_path, capsys):
    first = bench(config(tmp_path, algos=["trpo"], run_seeds=[0]))
    before = json.loads((first / "results.json").read_text())["runs"]
    # seed 1 was interrupted mid-training: its run directory exists without a journal record
    (first / "runs" / "trpo__1").mkdir(parents=True)
    capsys.readouterr()

    again = bench(config(tmp_path, algos=["trpo"], run_seeds=[0, 1]))
    log = capsys.readouterr().out
    assert "trpo, seed 0: done in an earlier run, reused" in log
    assert "trpo, seed 1: running" in log
    runs = json.loads((again / "results.json").read_text())["runs"]

    def measured(run):  # the size-controlled columns depend on every run compared: not journaled
        return {key: value for key, value in run.items() if not key.startswith("vendi_subsample")}

    assert measured(runs[0]) == measured(before[0])
    assert runs[1]["seed"] == 1 and runs[1]["train_reviewer_queries"] > 0
    assert len((again / "runs.jsonl").read_text().splitlines()) == 2


def test_variants_and_listed_agents(tmp_path):
    agents = bench_agents(
        config(
            tmp_path,
            variants=["discrete", "last_action"],
            agents=[
                {
                    "name": "round-robin",
                    "policy": "examples/custom_agent.py:RoundRobinAgent",
                    "action_type": "discrete",
                }
            ],
        )
    )
    assert [(a.name, a.action_type, a.observation) for a in agents] == [
        ("trpo", "continuous", "text"),
        ("uniform", "continuous", "text"),
        ("trpo/discrete", "discrete", "text"),
        ("trpo/last_action", "continuous", "last_action"),
        ("round-robin", "discrete", "text"),
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"algos": ["trpo", "nosuch.module:Agent"]}, "cannot import module 'nosuch.module'"),
        ({"algos": ["examples/custom_agent.py:Missing"]}, "has no class 'Missing'"),
        ({"algos": ["walrus"]}, "unknown agent 'walrus'"),
        ({"agents": [{"name": "x"}]}, "give exactly one of algo"),
        ({"variants": ["sideways"]}, "unknown variant 'sideways'"),
    ],
)
def test_bad_agents_fail_before_any_work(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        bench(config(tmp_path, **overrides))
    assert not (tmp_path / "bench" / "runs").exists()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"budget": 0}, "budget must be at least 1"),
        ({"run_seeds": "0,one,2"}, "key 'run_seeds': must be an integer, got 'one'"),
    ],
)
def test_bad_numbers(values, message):
    with pytest.raises(ConfigError, match=message):
        build(BenchConfig, values, "bench.yaml")


def test_the_run_key_holds_the_reviewer_given_in_the_config_or_as_an_override(tmp_path, capsys):
    from teams_env.llm.scripted import ScriptedBackend
    from teams_rl.agents.benchmark.live import _run_key

    agent = bench_agents(config(tmp_path, algos=["uniform"]))[0]
    base = config(tmp_path)
    assert _run_key(base, agent, 0) != _run_key(config(tmp_path, reviewer="scripted?name=other"), agent, 0)
    one, other = ScriptedBackend(name="reviewer-a"), ScriptedBackend(name="reviewer-b")
    assert _run_key(base, agent, 0, {"reviewer": one}) != _run_key(base, agent, 0, {"reviewer": other})
    assert _run_key(base, agent, 0, {"reviewer": one}) == _run_key(
        base, agent, 0, {"reviewer": ScriptedBackend(name="reviewer-a")}
    )
    assert _run_key(base, agent, 0, {"reviewer": one}) != _run_key(base, agent, 0)

    # A bench run again with another reviewer object runs again instead of reusing the results.
    small = config(tmp_path, algos=["uniform"], run_seeds=[0], eval_limit=2)
    bench(small, env_overrides={"reviewer": one})
    capsys.readouterr()
    bench(small, env_overrides={"reviewer": other})
    assert "uniform, seed 0: running" in capsys.readouterr().out
    bench(small, env_overrides={"reviewer": ScriptedBackend(name="reviewer-b")})
    assert "uniform, seed 0: done in an earlier run, reused" in capsys.readouterr().out
