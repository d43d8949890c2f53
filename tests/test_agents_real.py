"""Training on the real embedded model (SmolLM2-135M expert and reviewer, all-MiniLM-L6-v2 encoder):
tiny budgets that check the plumbing with real LLM calls, not the quality of what is learned.

Rewrites are capped at 32 new tokens to keep the tests short (a cut-off rewrite is still a
rewrite); the session's private LLM cache (conftest) answers repeated requests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from teams_env.seeds import load_seeds
from teams_rl.agents.commands import TrainConfig
from teams_rl.agents.evaluation import evaluate_agent
from teams_rl.agents.policy import saved_env_kwargs
from teams_rl.agents.training.train import train

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, **changes: Any) -> TrainConfig:
    return TrainConfig(
        max_new_tokens=32,
        n_envs=4,
        checkpoint_freq=16,
        out=str(tmp_path),
        progress_bar=False,
        **changes,
    )


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _requests(run_dir: Path, role: str) -> int:
    usage = json.loads((run_dir / "queries.json").read_text())[role]
    return int(usage["queries"] + usage["cache_hits"])


def test_trpo_on_the_real_model_saves_reloads_and_resumes(tmp_path: Path) -> None:
    run_dir = train(_config(tmp_path, total_timesteps=32, hyperparams={"n_steps": 4, "batch_size": 16}))

    assert (run_dir / "final_model.zip").is_file()
    assert (run_dir / "checkpoints" / "model_16_steps.zip").is_file()
    assert (run_dir / "reward_curve.png").is_file()
    assert _requests(run_dir, "expert") == 32  # one rewrite per step, from the model or the cache
    last = _metrics(run_dir)[-1]
    assert last["step"] == 32
    assert 0 < last["charts/reviewer_queries"] <= _requests(run_dir, "reviewer")
    rates = [row["charts/not_equal_rate"] for row in _metrics(run_dir) if "charts/not_equal_rate" in row]
    assert rates and all(0.0 <= rate <= 1.0 for rate in rates)
    assert "losses/value_loss" in last

    env_kwargs = saved_env_kwargs(str(run_dir))
    assert env_kwargs is not None and env_kwargs["encoder"] == "default"
    held_out = load_seeds().seeds[-2:]
    result = evaluate_agent(str(run_dir), held_out, env_kwargs, n_envs=2)
    assert len(result.episodes) == 2
    assert 0.0 <= result.mean_return <= 6.0
    assert result.queries["expert"]["queries"] + result.queries["expert"]["cache_hits"] == 12

    resumed = train(_config(tmp_path, resume=str(run_dir), total_timesteps=48))
    assert resumed == run_dir
    assert (run_dir / "checkpoints" / "model_48_steps.zip").is_file()
    assert _metrics(run_dir)[-1]["step"] == 48
    assert _requests(run_dir, "expert") == 48  # the ledger continues across the two segments


def test_ppo_on_the_real_discrete_twin(tmp_path: Path) -> None:
    run_dir = train(
        _config(
            tmp_path,
            algo="ppo",
            action_type="discrete",
            total_timesteps=24,
            hyperparams={"n_steps": 6, "batch_size": 24},
        )
    )
    assert run_dir.name.startswith("TeaMsInstructDiscrete-v1__ppo__0__")
    assert json.loads((run_dir / "env_kwargs.json").read_text())["action_type"] == "discrete"
    assert (run_dir / "final_model.zip").is_file()
    assert _requests(run_dir, "expert") == 24
    last = _metrics(run_dir)[-1]
    assert last["step"] == 24
    assert {"losses/value_loss", "losses/entropy_loss", "losses/approx_kl"} <= set(last)
    episodes = [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 4  # 6 steps in each of 4 sub-environments: one whole episode each
    assert all(0 <= episode["return"] <= 6 for episode in episodes)
