"""Every example runs as a user runs it: a scripted stand-in LLM (seconds), or a tiny budget on the
embedded model where the example is about the model itself (fine-tuning)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(script: str, cwd: Path, flag: str = "--scripted", env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *([flag] if flag else [])],
        cwd=cwd,
        capture_output=True,
        text=True,
        # The real-model bench example on a cold cache is the longest (minutes).
        timeout=1800,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_custom_agent_example_is_short_and_uses_every_action_once(tmp_path: Path) -> None:
    assert len((EXAMPLES / "custom_agent.py").read_text().splitlines()) < 40
    out = _run("custom_agent.py", tmp_path)
    report = out.split("\n\n")[0]
    assert report.startswith("RoundRobinAgent: 8 episodes")
    overall = next(line for line in report.splitlines() if line.startswith("all"))
    assert overall.split()[2:] == ["0.17"] * 6  # each of the six actions on one step in six
    assert "uniform: 8 episodes" in out


def test_train_trpo_example_trains_and_compares_with_uniform(tmp_path: Path) -> None:
    out = _run("train_trpo.py", tmp_path)
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "final_model.zip").is_file()
    assert f"{Path('runs') / runs[0].name}: 8 episodes" in out
    assert "uniform: 8 episodes" in out


def test_every_example_has_a_smoke_test() -> None:
    source = Path(__file__).read_text()
    untested = [p.name for p in EXAMPLES.glob("*.py") if f'"{p.name}"' not in source]
    assert not untested


def test_gymnasium_example_plays_one_episode(tmp_path: Path) -> None:
    out = _run("gymnasium_env.py", tmp_path)
    assert "return" in out and "of 6; observation shape" in out
    assert "expert" in out and "reviewer" in out  # the query ledger


def test_own_seeds_example_generates_and_reads_the_dataset(tmp_path: Path) -> None:
    out = _run("generate_own_seeds.py", tmp_path)
    first = out.splitlines()[0]
    assert first.split()[0].isdigit() and int(first.split()[0]) > 0
    assert "- [" in out  # rows read back through `datasets`


def test_bench_example_compares_two_algorithms_and_a_floor(tmp_path: Path) -> None:
    out = _run("bench_two_algorithms.py", tmp_path)
    for agent in ("trpo", "ppo", "uniform"):
        assert f"| {agent} |" in out
    assert "action_heatmap.png, diversity.png, reward_curves.png" in out


@pytest.mark.slow
def test_sft_lora_example_fine_tunes_the_embedded_model(tmp_path: Path) -> None:
    out = _run("sft_lora.py", tmp_path, flag="--tiny")
    assert "saved lora fine-tune of embedded" in out
    assert (tmp_path / "runs" / "sft_lora_example" / "model" / "config.json").is_file()  # not left in /tmp
    assert out.split("answer:")[1].strip()  # the merged model says something


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("gymnasium_env.py", "of 6; observation shape"),
        ("custom_agent.py", "RoundRobinAgent: 8 episodes"),
        ("generate_own_seeds.py", "- ["),
        ("train_trpo.py", "uniform: 8 episodes"),
        ("bench_two_algorithms.py", "| trpo |"),
    ],
)
def test_every_example_runs_its_real_model_path(tmp_path: Path, script: str, expected: str) -> None:
    """As a user runs it, without --scripted: the embedded SmolLM2 expert and reviewer."""
    import os

    env = {**os.environ, "TEAMS_RL_CACHE": str(tmp_path / "llm-cache.sqlite")}
    out = _run(script, tmp_path, flag="", env=env)
    assert expected in out
