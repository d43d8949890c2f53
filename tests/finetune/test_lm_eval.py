"""``teams-rl eval``: option parsing, task checks, and the harness on the shipped local task."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from teams_rl.cli import main
from teams_rl.finetune.commands import EvalConfig
from teams_rl.finetune.lm_eval_runner import check_tasks, group_by_shots, parse_shots, results_table


def test_the_paper_shot_counts_are_the_defaults() -> None:
    config = EvalConfig(model="m")
    assert config.tasks == ["arc_challenge", "hellaswag"]
    assert parse_shots(config.shots) == {"arc_challenge": 25, "hellaswag": 10}


def test_tasks_are_grouped_by_shot_count() -> None:
    shots = {"arc_challenge": 25, "hellaswag": 10, "arc_easy": 25}
    groups = group_by_shots(["arc_challenge", "mine", "hellaswag", "arc_easy"], shots)
    assert groups == {25: ["arc_challenge", "arc_easy"], None: ["mine"], 10: ["hellaswag"]}


@pytest.mark.parametrize("item", ["arc_challenge", "arc=x", "=3", "arc=-1"])
def test_malformed_shots_are_rejected(item: str) -> None:
    with pytest.raises(ValueError, match="expected TASK=N"):
        parse_shots([item])


def test_unknown_task_names_suggest_close_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown lm-eval task 'helaswag'; did you mean hellaswag"):
        check_tasks(["arc_challenge", "helaswag"], ["arc_challenge", "hellaswag", "mmlu"])


def test_results_table_lists_metrics_with_their_stderr() -> None:
    results = {"t": {"alias": "t", "acc,none": 0.5, "acc_stderr,none": 0.1, "sample_len": 30}}
    table = results_table(results, {"t": 3})
    assert "| t | 3 | acc | 0.5000 | 0.1000 |" in table
    assert "sample_len" not in table and "alias" not in table


@pytest.mark.slow
def test_unknown_task_fails_before_any_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the model does not exist either: the task check must come first
    assert main(["eval", "--model", str(tmp_path / "missing"), "--tasks", "no_such_task_xyz"]) == 2
    error = capsys.readouterr().err
    assert "unknown lm-eval task 'no_such_task_xyz'" in error and "missing" not in error


@pytest.mark.slow
def test_local_task_scores_the_fine_tuned_model(
    finetuned_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["eval", "--model", str(finetuned_model), "--tasks", "teams_rl_general_knowledge"]
    arguments += ["--shots", "teams_rl_general_knowledge=2", "--limit", "8", "--out", str(tmp_path)]
    assert main(arguments) == 0
    report = json.loads((tmp_path / "lm_eval_results.json").read_text())
    assert report["model_path"] == str(finetuned_model)  # the model asked for, not the default
    scores = report["results"]["teams_rl_general_knowledge"]
    for metric in ("acc", "acc_norm"):
        # Exactly the eight questions of --limit were scored, each right or wrong: the mean is a
        # multiple of 1/8 and its standard error is that of eight 0/1 outcomes.
        value, stderr = scores[f"{metric},none"], scores[f"{metric}_stderr,none"]
        assert value == pytest.approx(round(value * 8) / 8)
        assert stderr == pytest.approx(math.sqrt(value * (1 - value) / 7))
    assert report["n_shot"]["teams_rl_general_knowledge"] == 2
    assert "| teams_rl_general_knowledge | 2 | acc |" in capsys.readouterr().out
