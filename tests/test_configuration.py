"""Dataclass options, YAML files and flags: the file overrides defaults, flags override the file,
and mistakes are one-line errors naming the file and key."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

import pytest

from teams_env.options import ConfigError, build, check_keys, load_preset, option
from teams_rl.flags import add_arguments, resolve


@dataclass
class Example:
    name: str = option("base", "a name")
    steps: int = option(10, "how many")
    rate: float = option(0.5, "a rate")
    fast: bool = option(False, "go fast")
    tags: list[str] = option(["a"], "some tags")
    limit: int | None = option(None, "optional limit")

    def validate(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")


def parse(argv: list[str], config: str | None = None) -> Example:
    parser = argparse.ArgumentParser()
    add_arguments(parser, Example)
    return resolve(Example, parser.parse_args(argv), config)


def test_defaults_then_file_then_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("steps: 20\nrate: 0.1\ntags: [x, y]\nfast: true\n", encoding="utf-8")
    assert parse([]) == Example()
    from_file = parse([], str(path))
    assert (from_file.steps, from_file.rate, from_file.tags, from_file.fast) == (20, 0.1, ["x", "y"], True)
    both = parse(["--steps", "30", "--tags", "p,q", "--no-fast", "--limit", "4"], str(path))
    assert (both.steps, both.rate, both.tags, both.fast, both.limit) == (30, 0.1, ["p", "q"], False, 4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stepz: 3\n", "run.yaml: key 'stepz': unknown key"),
        ("steps: many\n", "run.yaml: key 'steps': must be an integer, got 'many'"),
        ("steps: 2.5\n", "must be an integer"),
        ("fast: maybe\n", "must be true or false"),
        ("steps: 0\n", "steps must be at least 1"),
        ("- a\n- b\n", "expected a mapping"),
        ("steps: [1\n", "run.yaml:2: invalid YAML"),
    ],
)
def test_file_mistakes_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        parse([], str(path))


def test_flag_mistakes_name_the_flag():
    with pytest.raises(ConfigError, match="--rate: must be a number, got 'fast'"):
        parse(["--rate", "fast"])


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        parse([], str(tmp_path / "none.yaml"))


def test_build_from_a_mapping():
    assert build(Example, {"steps": "7"}, "preset").steps == 7
    with pytest.raises(ConfigError, match="preset: key 'colour': unknown key"):
        build(Example, {"colour": "red"}, "preset")


def test_one_preset_loader_for_shipped_names_and_files(tmp_path):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "fast.yml").write_text("steps: 3\n", encoding="utf-8")
    mine = tmp_path / "mine.yml"
    mine.write_text("steps: 4\ncolour: red\n", encoding="utf-8")
    known = [f.name for f in dataclasses.fields(Example)]

    def check(values, where):
        check_keys(values, known, where)

    assert load_preset("fast", shipped, check) == {"steps": 3}
    with pytest.raises(ConfigError, match=r"mine\.yml: key 'colour': unknown key \(known keys: fast, limit"):
        load_preset(str(mine), shipped, check)
    with pytest.raises(FileNotFoundError, match=r"preset 'slow' is neither a shipped preset \(fast\)"):
        load_preset("slow", shipped, check)


def test_validation_errors_name_options_as_flags_on_the_command_line():
    from teams_env.options import as_flags

    names = {"eval_limit", "eval_offset", "n_envs", "budget", "seed", "policy"}
    assert as_flags("eval_limit must be >= 2, eval_offset >= 0 and n_envs >= 1", names) == (
        "--eval-limit must be >= 2, --eval-offset >= 0 and --n-envs >= 1"
    )
    assert as_flags("budget must be at least 1, got 0", names) == "--budget must be at least 1, got 0"
    prose = "policy 'x' is not a run directory; the random seed is --seed"
    assert as_flags(prose, names) == prose
