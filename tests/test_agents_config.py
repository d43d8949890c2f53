"""Options of train / evaluate-policy, the algorithm registry and hyperparameter files: good input
becomes the right values, bad input a one-line error that names where it came from."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from teams_env.options import ConfigError, build, parse_mapping
from teams_rl.agents.commands import EvaluatePolicyConfig, TrainConfig
from teams_rl.agents.training.algorithms import ALGORITHMS, get_algorithm
from teams_rl.agents.training.hyperparameters import load_hyperparams, model_arguments
from teams_rl.cli import build_parser, main
from teams_rl.flags import resolve


def test_overrides_parse_numbers_lists_and_dotted_keys() -> None:
    parsed = parse_mapping("learning_rate=1e-3,n_steps=64,policy_kwargs.net_arch=[32,32],use_sde=true")
    assert parsed == {
        "learning_rate": 0.001,
        "n_steps": 64,
        "policy_kwargs": {"net_arch": [32, 32]},
        "use_sde": True,
    }
    assert parse_mapping("{target_kl: 5e-2, policy_kwargs: {net_arch: [16]}}") == {
        "target_kl": 0.05,
        "policy_kwargs": {"net_arch": [16]},
    }
    assert parse_mapping("") == {}


@pytest.mark.parametrize("text", ["learning_rate", "=3", "{not: [closed"])
def test_malformed_overrides_are_errors(text: str) -> None:
    with pytest.raises(ValueError, match="--hyperparams"):
        parse_mapping(text, "--hyperparams")


def test_trpo_defaults_are_the_papers_values() -> None:
    hyperparams = load_hyperparams(get_algorithm("trpo"))
    assert hyperparams["gamma"] == 0.995
    assert hyperparams["gae_lambda"] == 0.97
    assert hyperparams["target_kl"] == 0.01
    assert hyperparams["cg_damping"] == 0.1
    assert hyperparams["policy_kwargs"]["net_arch"] == {"pi": [64, 64], "vf": [64, 64]}
    policy, arguments = model_arguments(hyperparams)
    assert policy == "MlpPolicy"
    assert arguments["policy_kwargs"]["activation_fn"] is nn.ReLU


def test_overrides_merge_into_the_shipped_file() -> None:
    hyperparams = load_hyperparams(
        get_algorithm("trpo"), overrides={"target_kl": 0.05, "policy_kwargs": {"net_arch": [32]}}
    )
    assert hyperparams["target_kl"] == 0.05
    assert hyperparams["policy_kwargs"]["net_arch"] == [32]
    assert hyperparams["policy_kwargs"]["activation_fn"] == "ReLU"  # the rest of the mapping stays
    assert hyperparams["gamma"] == 0.995


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_shipped_hyperparameter_file_fits_its_algorithm(name: str) -> None:
    algorithm = get_algorithm(name)
    policy, _ = model_arguments(load_hyperparams(algorithm))  # unknown keys would raise
    assert policy in algorithm.load_class().policy_aliases


def test_unknown_hyperparameters_name_their_source(tmp_path: Path) -> None:
    trpo = get_algorithm("trpo")
    with pytest.raises(ValueError, match="--hyperparams: key 'n_epochs': not a hyperparameter of trpo"):
        load_hyperparams(trpo, overrides={"n_epochs": 3})
    file = tmp_path / "mine.yml"
    file.write_text("gamma: 0.9\nclip_range: 0.2\n")
    with pytest.raises(ValueError, match=r"mine\.yml: key 'clip_range': not a hyperparameter of trpo"):
        load_hyperparams(trpo, str(file))
    with pytest.raises(ValueError, match="'seed' is set by teams-rl train"):
        load_hyperparams(trpo, overrides={"seed": 3})
    with pytest.raises(ValueError, match=r"not a torch\.nn activation"):
        model_arguments({"policy_kwargs": {"activation_fn": "Sigmoidish"}})


def test_action_type_rule() -> None:
    assert get_algorithm("trpo").resolve_action_type("auto") == "continuous"
    assert get_algorithm("ppo").resolve_action_type("discrete") == "discrete"
    assert get_algorithm("dqn").resolve_action_type("auto") == "discrete"
    assert get_algorithm("sac").resolve_action_type("auto") == "continuous"
    with pytest.raises(ValueError, match="'dqn' does not support continuous actions"):
        get_algorithm("dqn").resolve_action_type("continuous")
    with pytest.raises(ValueError, match="unknown algorithm 'trpoo'"):
        get_algorithm("trpoo")


def test_command_line_values_become_a_config() -> None:
    args = build_parser().parse_args(
        ["train", "--algo", "ppo", "--action-type", "discrete", "--hyperparams", "n_steps=12,batch_size=24"]
    )
    config = resolve(TrainConfig, args)
    assert (config.algo, config.action_type) == ("ppo", "discrete")
    assert config.hyperparams == {"n_steps": 12, "batch_size": 24}


def test_train_writes_under_out_and_runs_dir_is_a_deprecated_alias(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    assert resolve(TrainConfig, build_parser().parse_args(["train", "--out", "mine"])).out == "mine"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "deprecated: use --out" in capsys.readouterr().out
    caplog.set_level("WARNING", logger="teams_env.options")
    old_flag = resolve(TrainConfig, build_parser().parse_args(["train", "--runs-dir", "old"]))
    assert old_flag.out == "old"
    assert "--runs-dir is deprecated; use --out" in caplog.text
    caplog.clear()
    file = tmp_path / "run.yaml"
    file.write_text("runs_dir: older\n")  # the config.yaml of a run saved before the rename
    assert resolve(TrainConfig, build_parser().parse_args(["train"]), str(file)).out == "older"
    assert f"{file}: key 'runs_dir': deprecated; use 'out'" in caplog.text
    with pytest.raises(ConfigError, match="a former name of 'out', which is given too"):
        build(TrainConfig, {"runs_dir": "a", "out": "b"}, "run.yaml")


def test_a_run_config_file_holds_hyperparameters_as_a_mapping() -> None:
    config = build(TrainConfig, {"algo": "trpo", "hyperparams": {"target_kl": "5e-2"}}, "run.yaml")
    assert config.hyperparams == {"target_kl": 0.05}  # YAML 1.1 reads 5e-2 as text; it becomes a number
    assert load_hyperparams(get_algorithm("trpo"), overrides=config.hyperparams)["target_kl"] == 0.05


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--algo", "nope"], "unknown algorithm 'nope'"),
        (["train", "--algo", "dqn", "--action-type", "continuous"], "does not support continuous actions"),
        (["train", "--algo", "sac", "--action-type", "discrete"], "does not support discrete actions"),
        (["train", "--total-timesteps", "0"], "--total-timesteps must be at least 1"),
        (["evaluate-policy"], "policy is required"),
        (["evaluate-policy", "--policy", "uniform", "--limit", "-1"], "limit must not be negative"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert message in error
    assert error.count("\n") == 0


def test_a_yaml_config_with_an_unknown_key_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("algo: trpo\ntotal_timestep: 64\n")
    assert main(["train", "--config", str(file)]) == 2
    assert f"{file}: key 'total_timestep': unknown key" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown key"):
        build(EvaluatePolicyConfig, {"policy": "uniform", "episodes": 3}, "eval.yaml")
