"""``teams-rl diversity``: every instruction file format, the side-by-side table, JSON, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teams_rl.cli import main
from teams_rl.finetune.records import read_instructions


@pytest.fixture
def instruction_files(tmp_path: Path, make_dataset) -> dict[str, Path]:
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(
        json.dumps(
            [
                {"instruction": "Translate the sentence.", "input": "Bonjour", "output": "Hello"},
                {"instruction": "Name three colours.", "input": "", "output": "red, blue, green"},
            ]
        )
    )
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"text": "Write a haiku about rain."}\n{"instruction": "Sum 2 and 3."}\n')
    lines = tmp_path / "lines.txt"
    lines.write_text("Explain gravity.\n\nList two planets.\nExplain gravity.\n")
    return {"dataset": make_dataset(count=6), "alpaca": alpaca, "plain": plain, "lines": lines}


def test_every_format_yields_its_instructions(instruction_files: dict[str, Path]) -> None:
    assert read_instructions(instruction_files["alpaca"]) == [
        "Translate the sentence.\n\nBonjour",
        "Name three colours.",
    ]
    assert read_instructions(instruction_files["plain"]) == ["Write a haiku about rain.", "Sum 2 and 3."]
    assert read_instructions(instruction_files["lines"]) == [
        "Explain gravity.",
        "List two planets.",
        "Explain gravity.",
    ]
    dataset = read_instructions(instruction_files["dataset"])
    assert len(dataset) == 6 and all(text.startswith("Describe the ") for text in dataset)


def test_messages_only_rows_use_the_first_user_turn(tmp_path: Path) -> None:
    rows = tmp_path / "chats.jsonl"
    chat = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Plan a picnic."}]
    rows.write_text(json.dumps({"messages": chat}) + "\n")
    assert read_instructions(rows) == ["Plan a picnic."]


def test_table_has_one_column_per_file_and_json_matches(
    instruction_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(path) for path in instruction_files.values()]
    out = tmp_path / "diversity.json"
    assert main(["diversity", *files, "--encoder", "hashing", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    header = printed.splitlines()[0]
    assert header == "| metric | " + " | ".join(files) + " |"
    report = json.loads(out.read_text())
    assert list(report["files"]) == files and report["encoder"] == "hashing:384"
    lines = report["files"][str(instruction_files["lines"])]
    assert lines["items"] == 3
    assert lines["distinct_1"] == pytest.approx(5 / 7)  # explain, gravity, list, two, planets of 7 words
    assert 1.0 < lines["vendi_score"] < 3.0  # a duplicate: fewer than 3 effective items
    assert lines["mean_nearest_neighbour_distance"] < lines["mean_pairwise_cosine_distance"]
    assert "| Vendi score, raw (of all n instructions) |" in printed and "| distinct-2 |" in printed
    # Size-controlled: every file on random subsets of the smallest file's size (2 here).
    assert report["subsample"] == {"size": 2, "resamples": 200, "seed": 0}
    assert all(column["vendi_subsample_size"] == 2 for column in report["files"].values())
    assert lines["vendi_subsampled_low"] <= lines["vendi_subsampled"] <= lines["vendi_subsampled_high"] <= 2.0
    assert lines["vendi_subsampled_per_item"] == pytest.approx(lines["vendi_subsampled"] / 2)
    assert "| Vendi score, 2 random instructions (200 subsets): mean [95% interval] |" in printed
    assert f"{lines['vendi_score']:.4f} (n=3)" in printed  # raw Vendi, labelled with its n


def test_a_fixed_subsample_size_must_fit_the_smallest_file(
    instruction_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dataset, lines = str(instruction_files["dataset"]), str(instruction_files["lines"])
    assert main(["diversity", dataset, lines, "--encoder", "hashing", "--subsample", "3"]) == 0
    assert "3 random instructions per file" in capsys.readouterr().out
    assert main(["diversity", dataset, lines, "--encoder", "hashing", "--subsample", "4"]) != 0
    assert "smallest set's 3 items" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no rows (empty file)"),
        ('{"output": "no instruction"}\n', ":1: no instruction"),
        ('{"instruction": "only one"}\n', "1 instruction; diversity needs at least 2"),
        ("[1, 2]", ": item 0: expected a JSON object"),
    ],
)
def test_unusable_files_are_clear_errors(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    assert main(["diversity", str(bad), "--encoder", "hashing"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("teams-rl diversity: error: ") and str(bad) in error and message in error


def test_no_files_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diversity"]) == 2
    assert "name at least one instruction file" in capsys.readouterr().err
