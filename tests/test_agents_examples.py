"""The examples run as a user runs them (scripted stand-in LLM, so in seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(script: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--scripted"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
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
