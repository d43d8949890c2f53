"""Training runs on the scripted backend: what a run directory holds, resuming, every registered
algorithm, evaluation, and the two commands end to end."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from gymnasium import spaces
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from teams_env.actions import ACTION_NAMES
from teams_env.llm.base import Conversation
from teams_env.llm.scripted import ScriptedBackend, scripted_reply
from teams_env.seeds import load_seeds
from teams_env.vector import TeaMsInstructVecEnv
from teams_rl.agents.commands import TrainConfig
from teams_rl.agents.evaluation import evaluate_agent
from teams_rl.agents.policy import load_agent, saved_env_kwargs
from teams_rl.agents.training.algorithms import ALGORITHMS
from teams_rl.agents.training.train import train
from teams_rl.cli import main

SCRIPTED = {"expert": "scripted", "encoder": "hashing", "cache": "none"}


def _config(tmp_path: Path, **changes: Any) -> TrainConfig:
    base = TrainConfig(
        **SCRIPTED,
        total_timesteps=64,
        n_envs=4,
        hyperparams={"n_steps": 8, "batch_size": 32},
        checkpoint_freq=32,
        out=str(tmp_path / "runs"),
        progress_bar=False,
    )
    return replace(base, **changes)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_trpo_run_directory_holds_model_config_logs_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = train(_config(tmp_path))

    assert re.fullmatch(r"TeaMsInstruct-v1__trpo__0__\d+", run_dir.name)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (config["algo"], config["total_timesteps"], config["encoder"]) == ("trpo", 64, "hashing")
    assert json.loads((run_dir / "env_kwargs.json").read_text())["action_type"] == "continuous"
    assert yaml.safe_load((run_dir / "hyperparams.yaml").read_text())["n_steps"] == 8
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "model_32_steps.zip",
        "model_64_steps.zip",
    ]
    assert (run_dir / "final_model.zip").is_file()
    assert (run_dir / "reward_curve.png").read_bytes().startswith(b"\x89PNG")

    queries = json.loads((run_dir / "queries.json").read_text())
    assert queries["expert"]["queries"] == 64  # one rewrite per step
    # One verdict per step that no validity rule decided (random actions repeat the scripted
    # expert's clauses into loops, which need no model), plus the 12 calibration anchors.
    reviewer_queries = queries["reviewer"]["queries"]
    assert 12 + 32 <= reviewer_queries <= 12 + 64
    assert "reviewer" in capsys.readouterr().out  # the query table is printed at the end

    episodes = _jsonl(run_dir / "episodes.jsonl")
    assert len(episodes) == 8  # 16 steps in each of 4 sub-environments: 2 whole episodes each
    assert all(len(e["actions"]) == 6 and set(e["actions"]) <= set(ACTION_NAMES) for e in episodes)
    assert all(e["return"] == sum(e["not_equal"]) for e in episodes)

    metrics = _jsonl(run_dir / "metrics.jsonl")
    last = metrics[-1]
    assert last["step"] == 64
    assert last["charts/expert_queries"] == 64
    assert last["charts/reviewer_queries"] == reviewer_queries
    assert "losses/value_loss" in last and "losses/kl_divergence_loss" in last
    rates = [row["charts/not_equal_rate"] for row in metrics if "charts/not_equal_rate" in row]
    assert rates and all(0.0 <= rate <= 1.0 for rate in rates)
    returns = [row["charts/episodic_return"] for row in metrics if "charts/episodic_return" in row]
    assert returns and all(0.0 <= r <= 6.0 for r in returns)

    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "charts/episodic_return",
        "charts/not_equal_rate",
        "charts/expert_queries",
        "charts/reviewer_queries",
        "charts/cache_hits",
        "charts/SPS",
        "losses/value_loss",
        "losses/policy_objective",
    } <= tags
    assert events.Scalars("charts/reviewer_queries")[-1].value == reviewer_queries


def test_resume_continues_the_same_run_and_appends_to_its_logs(tmp_path: Path) -> None:
    first = train(_config(tmp_path))
    rows_before = len(_jsonl(first / "metrics.jsonl"))
    episodes_before = len(_jsonl(first / "episodes.jsonl"))

    resumed = train(replace(_config(tmp_path), resume=str(first), total_timesteps=128))

    assert resumed == first
    assert (first / "checkpoints" / "model_128_steps.zip").is_file()
    metrics = _jsonl(first / "metrics.jsonl")
    assert len(metrics) > rows_before
    assert metrics[-1]["step"] == 128
    assert len(_jsonl(first / "episodes.jsonl")) > episodes_before
    queries = json.loads((first / "queries.json").read_text())
    assert queries["expert"]["queries"] == 128  # counted across both segments
    assert yaml.safe_load((first / "config.yaml").read_text())["total_timesteps"] == 128
    assert len(list(first.glob("events.out.tfevents.*"))) == 2


def test_an_interrupted_run_keeps_its_steps_and_resumes(tmp_path: Path) -> None:
    calls = 0

    def reply_then_interrupt(conversation: Conversation) -> str:
        nonlocal calls
        calls += 1
        if calls > 40:  # the user presses Ctrl-C during the 11th vector step
            raise KeyboardInterrupt
        return scripted_reply(conversation)

    config = _config(tmp_path, checkpoint_freq=1000)
    with pytest.raises(KeyboardInterrupt):
        train(config, env_overrides={"expert": ScriptedBackend(reply=reply_then_interrupt)})
    run_dir = next((tmp_path / "runs").iterdir())
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["model_40_steps.zip"]
    assert json.loads((run_dir / "queries.json").read_text())["expert"]["queries"] == 40

    train(replace(config, resume=str(run_dir)))
    assert (run_dir / "final_model.zip").is_file()
    steps = _jsonl(run_dir / "metrics.jsonl")[-1]["step"]
    assert steps >= 64  # SB3 finishes its last rollout of 8 steps x 4 envs
    assert json.loads((run_dir / "queries.json").read_text())["expert"]["queries"] == steps


def test_resume_refuses_what_it_cannot_continue(tmp_path: Path) -> None:
    run_dir = train(_config(tmp_path))
    with pytest.raises(ValueError, match="cannot change algo of a run"):
        train(replace(_config(tmp_path), resume=str(run_dir), algo="ppo"))
    with pytest.raises(FileNotFoundError, match="not a training run directory"):
        train(replace(_config(tmp_path), resume=str(tmp_path)))
    with pytest.raises(ValueError, match="run directory exists"):
        train(_config(tmp_path, run_name=run_dir.name))
    (run_dir / "checkpoints" / "model_64_steps.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"model_64_steps\.zip: not a usable trpo checkpoint"):
        train(replace(_config(tmp_path), resume=str(run_dir), total_timesteps=128))


def test_resume_refuses_new_hyperparameters_with_one_line(tmp_path: Path) -> None:
    run_dir = train(_config(tmp_path))
    saved = (run_dir / "hyperparams.yaml").read_text()
    changed = replace(
        _config(tmp_path),
        resume=str(run_dir),
        total_timesteps=128,
        hyperparams={"n_steps": 8, "batch_size": 32, "target_kl": 0.05},
    )
    with pytest.raises(ValueError) as error:
        train(changed)
    message = str(error.value)
    assert "\n" not in message and message.startswith(
        f"--resume {run_dir}: cannot change the hyperparameters"
    )
    assert "target_kl: " in message and "-> 0.05" in message
    assert (run_dir / "hyperparams.yaml").read_text() == saved  # nothing written
    assert not (run_dir / "checkpoints" / "model_128_steps.zip").exists()
    assert main(["train", "--resume", str(run_dir), "--hyperparams", "target_kl=0.05"]) != 0


def test_ppo_trains_on_the_discrete_twin(tmp_path: Path) -> None:
    run_dir = train(
        _config(tmp_path, algo="ppo", action_type="discrete", hyperparams={"n_steps": 8, "batch_size": 32})
    )
    assert run_dir.name.startswith("TeaMsInstructDiscrete-v1__ppo__0__")
    kwargs = saved_env_kwargs(str(run_dir))
    assert kwargs is not None and kwargs["action_type"] == "discrete"
    env = TeaMsInstructVecEnv(2, **kwargs)
    model = load_agent(str(run_dir), env)
    assert isinstance(model.action_space, spaces.Discrete)  # type: ignore[attr-defined]
    actions, _ = model.predict(env.reset(), deterministic=True)
    assert actions.shape == (2,)
    continuous = TeaMsInstructVecEnv(2, **{**kwargs, "action_type": "continuous"})
    with pytest.raises(ValueError, match="the policy was trained with action space Discrete"):
        load_agent(str(run_dir), continuous)


@pytest.mark.parametrize(
    ("algo", "action_type"),
    [(name, action_type) for name, algorithm in ALGORITHMS.items() for action_type in algorithm.action_types],
)
def test_every_algorithm_trains_saves_and_reloads(tmp_path: Path, algo: str, action_type: str) -> None:
    run_dir = train(_config(tmp_path, algo=algo, action_type=action_type, hyperparams={}, total_timesteps=48))
    assert (run_dir / "final_model.zip").is_file()
    result = evaluate_agent(str(run_dir), ["How to cook food?", "Plan a picnic."], SCRIPTED)
    assert len(result.episodes) == 2
    assert all(len(episode.actions) == 6 for episode in result.episodes)


def test_evaluation_report_covers_every_seed_and_step(
    scripted_env_kwargs: Callable[..., dict[str, Any]],
) -> None:
    backend = ScriptedBackend()
    seeds = load_seeds().seeds[:5]
    result = evaluate_agent(
        "fixed:breadth,add_constraints,deepening,concretizing,increase_reasoning,complicate_input",
        seeds,
        scripted_env_kwargs(expert=backend, action_type="discrete"),
        n_envs=4,
    )
    assert [episode.seed_id for episode in result.episodes] == [seed.id for seed in seeds]
    report = result.as_dict()
    assert report["episodes"] == 5
    assert report["action_frequencies"]["breadth"] == pytest.approx(1 / 6)
    assert [step["action_frequencies"]["deepening"] for step in report["per_step"]] == [0, 0, 1, 0, 0, 0]
    # The scripted reviewer rewards every change; six different clauses never make a loop.
    assert report["mean_return"] == pytest.approx(6.0)
    assert report["queries"]["expert"]["queries"] == 30  # 4 + 1 episodes of 6 rewrites, in two batches
    assert report["queries"]["reviewer"]["queries"] >= 30  # one verdict each, plus calibration anchors
    assert "episodes" in result.format_table() and "fixed:breadth,add_constraints" in result.format_table()


def test_train_and_evaluate_policy_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--expert", "scripted", "--encoder", "hashing", "--cache", "none"]
    runs = tmp_path / "runs"
    argv = ["train", *flags, "--total-timesteps", "48", "--out", str(runs), "--run-name", "cli"]
    assert main([*argv, "--hyperparams", "n_steps=6,batch_size=48", "--no-progress-bar"]) == 0
    report = tmp_path / "report.json"
    evaluate = ["evaluate-policy", *flags, "--policy", str(runs / "cli"), "--offset", "100", "--limit", "3"]
    assert main([*evaluate, "--output", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["episodes"] == 3
    assert data["policy"] == str(runs / "cli")
    assert sum(data["action_frequencies"].values()) == pytest.approx(1.0)
    assert [row["seed_id"] for row in data["per_episode"]] == [s.id for s in load_seeds().seeds[100:103]]
    assert "Not-Equal rate" in capsys.readouterr().out
