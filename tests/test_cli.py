"""The ``teams-rl`` dispatcher: every command parses, and Ctrl-C says how to go on."""

from __future__ import annotations

import pytest

from teams_rl import cli


@pytest.mark.parametrize("command", cli.COMMANDS, ids=lambda c: c.name)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command.name, "--help"])
    assert exit_info.value.code == 0
    assert "--config" in capsys.readouterr().out


def test_the_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(command.name in out for command in cli.COMMANDS)
    assert "95% CI" in out


@pytest.mark.parametrize(
    ("argv", "run", "hint"),
    [
        (["train"], "agents.train.run", "teams-rl train --resume"),
        (["generate", "--out", "data"], "agents.generate.run", "run the same command again to resume"),
        (["bench"], "agents.bench.run", "cached"),
        (["diversity", "data.jsonl"], "finetune.diversity.run", "interrupted"),
    ],
)
def test_interrupt_exits_130_with_the_way_to_go_on(argv, run, hint, monkeypatch, capsys):
    def interrupted(config: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(run, interrupted)
    command = argv[0]
    assert cli.main(argv) == 130
    message = capsys.readouterr().err.strip()
    assert message.startswith(f"teams-rl {command}: ") and hint in message
    assert "Traceback" not in message


def test_library_progress_bars_are_hushed_unless_verbose(monkeypatch, tmp_path):
    import os

    for variable in cli.QUIET_LIBRARIES:
        monkeypatch.setenv(variable, "")  # so that teardown restores whatever was there before
        monkeypatch.delenv(variable)
    missing = str(tmp_path / "none.jsonl")
    with pytest.raises(ValueError, match="benchmark file not found"):  # --verbose re-raises errors
        cli.main(["reviewer-bench", "-v", "--bench", missing])
    assert not any(variable in os.environ for variable in cli.QUIET_LIBRARIES)
    assert cli.main(["reviewer-bench", "--bench", missing]) == 2
    assert all(os.environ[variable] == value for variable, value in cli.QUIET_LIBRARIES.items())
