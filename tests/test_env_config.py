"""The env's options have one source of defaults (``EnvConfig``): the env's signature, every command's
flags and the options a command hands to the env agree, and the env's docstring names every argument."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest

from teams_env.env import TeaMsInstructEnv
from teams_env.env_config import ENV_DEFAULTS, EnvConfig
from teams_env.options import ConfigError
from teams_rl import cli

ENV_PARAMETERS = inspect.signature(TeaMsInstructEnv).parameters
INTENDED_OVERRIDES = {("generate", "on_failure"): "revert"}
"""Commands whose default differs from the env's on purpose (generation reverts failed steps)."""


def _resolve(argv: list[str]) -> object:
    args = cli.build_parser().parse_args(argv)
    return cli.resolve(cli._load(args._command.config), args)


def test_the_env_signature_takes_its_defaults_from_env_config():
    for item in dataclasses.fields(EnvConfig):
        assert item.name in ENV_PARAMETERS, item.name
        assert ENV_PARAMETERS[item.name].default == getattr(ENV_DEFAULTS, item.name), item.name


ENV_COMMANDS = [c for c in cli.COMMANDS if issubclass(cli._load(c.config), EnvConfig)]


@pytest.mark.parametrize("command", ENV_COMMANDS, ids=lambda c: c.name)
def test_every_env_command_defaults_to_the_env_defaults(command):
    handed_over = cli._load(command.config)().env_kwargs()
    assert set(handed_over) == {item.name for item in dataclasses.fields(EnvConfig)}
    for name, value in handed_over.items():
        assert value == INTENDED_OVERRIDES.get((command.name, name), ENV_PARAMETERS[name].default), name


def test_reviewer_commands_take_the_env_defaults():
    from teams_rl.reviewer_commands import ReviewerBenchConfig

    bench = ReviewerBenchConfig()
    for name in ("review_method", "reviewer_head", "reviewer_threshold", "encoder", "cache"):
        assert getattr(bench, name) == ENV_PARAMETERS[name].default, name
    assert bench.reviewer == ENV_PARAMETERS["expert"].default  # no expert here to fall back on


def test_the_cli_hands_the_env_its_defaults_unchanged():
    kwargs = _resolve(["rollout"]).env_kwargs()
    assert kwargs == {name: ENV_PARAMETERS[name].default for name in kwargs}
    generate = _resolve(["generate", "--out", "data"])
    assert generate.env_kwargs()["on_failure"] == INTENDED_OVERRIDES[("generate", "on_failure")]


@pytest.mark.parametrize(("given", "expected"), [("0.7", 0.7), ("auto", "auto")], ids=["number", "auto"])
def test_reviewer_threshold_is_a_number_or_auto(given, expected):
    config = _resolve(["rollout", "--reviewer-threshold", given])
    assert config.env_kwargs()["reviewer_threshold"] == expected


def test_a_bad_reviewer_threshold_is_a_one_line_error():
    with pytest.raises(ConfigError, match="--reviewer-threshold must be 'auto' or a number, got 'high'"):
        _resolve(["rollout", "--reviewer-threshold", "high"])


def test_the_docstring_names_every_argument():
    arguments = (TeaMsInstructEnv.__doc__ or "").split("## Arguments", 1)[1]
    named = set(re.findall(r"``(\w+)``", arguments))
    assert set(ENV_PARAMETERS) <= named, sorted(set(ENV_PARAMETERS) - named)
