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
        (["train"], "teams_rl.agents.training.train.run", "teams-rl train --resume"),
        (
            ["generate", "--out", "data"],
            "teams_rl.agents.generation.generate.run",
            "run the same command again to resume",
        ),
        (["bench"], "teams_rl.agents.benchmark.live.run", "cached"),
        (["diversity", "data.jsonl"], "teams_rl.finetune.diversity.run", "interrupted"),
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


@pytest.fixture
def restored_logging(monkeypatch):
    """configure_output changes process-wide logging; start from and put back the usual state."""
    import logging

    names = (*cli.QUIET_LOGGERS, "bitsandbytes", "py.warnings", *cli.OUR_PACKAGES)
    levels = {name: logging.getLogger(name).level for name in names}
    for variable in cli.QUIET_LIBRARIES:
        monkeypatch.setenv(variable, "")
    # As in a fresh process (earlier cli.main() calls here changed them):
    logging.captureWarnings(False)
    for name in names:
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield
    logging.captureWarnings(False)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _library_noise_and_our_progress() -> None:
    import logging
    import warnings

    for library in (*cli.QUIET_LOGGERS, "bitsandbytes"):
        logging.getLogger(library).warning("a notice from %s", library)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn_explicit(
            "deprecated argument", FutureWarning, "transformers/trainer.py", 1, "transformers"
        )
    logging.getLogger("teams_rl.agents.training.train").info("step 8 of 96")


def test_run_shows_our_progress_not_library_notices(restored_logging, caplog):
    cli.configure_output(verbose=False)
    _library_noise_and_our_progress()
    assert [record.getMessage() for record in caplog.records] == ["step 8 of 96"]


def test_verbose_shows_library_notices(restored_logging, caplog):
    cli.configure_output(verbose=True)
    _library_noise_and_our_progress()
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "a notice from transformers" in messages and "step 8 of 96" in messages
