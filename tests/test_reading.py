"""The reading protocol's commands: blind export hides everything but the triple; merge reports
GOOD shares and Cohen's kappa."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teams_rl.cli import main
from teams_rl.reading import cohen_kappa, wilson_interval


def _items(path: Path) -> Path:
    rows = [
        {
            "instruction": "Explain tides.",
            "action": "deepening",
            "rewrite": "Explain tides and their causes.",
            "expert": "a",
        },
        {
            "instruction": "Explain tides.",
            "action": "deepening",
            "rewrite": "Explain tides and their causes.",
            "expert": "b",
        },
        {
            "instruction": "Explain tides.",
            "action": "breadth",
            "rewrite": "Explain rip currents.",
            "expert": "a",
        },
        {"instruction": "Bake bread.", "action": "breadth", "rewrite": "Bake bread.", "expert": "b"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_export_is_blind_and_merge_reports_shares_and_kappa(tmp_path: Path, capsys) -> None:
    out = tmp_path / "reading"
    assert (
        main(["reading-export", str(_items(tmp_path / "items.jsonl")), "--out", str(out), "--parts", "2"])
        == 0
    )
    blind = [
        json.loads(line) for part in (1, 2) for line in (out / f"blind_{part}.jsonl").read_text().splitlines()
    ]
    assert len(blind) == 3  # the two identical triples are read once
    assert all(set(row) == {"id", "action", "instruction", "rewrite"} for row in blind)
    by_rewrite = {row["rewrite"]: row["id"] for row in blind}
    first = {
        by_rewrite["Explain tides and their causes."]: "GOOD",
        by_rewrite["Explain rip currents."]: "GOOD",
        by_rewrite["Bake bread."]: "SAME",
    }
    second = {**first, by_rewrite["Explain rip currents."]: "DRIFT"}
    for name, labels in (("first", first), ("second", second)):
        (tmp_path / f"{name}.jsonl").write_text(
            "".join(json.dumps({"id": i, "label": v}) + "\n" for i, v in labels.items())
        )
    assert (
        main(
            [
                "reading-merge",
                str(out),
                "--labels",
                f"{tmp_path / 'first.jsonl'},{tmp_path / 'second.jsonl'}",
                "--by",
                "expert",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["double_labelled"] == 3 and summary["agreement"] == pytest.approx(2 / 3)
    table = {row["expert"]: row for row in summary["table"]}
    assert (table["a"]["good"], table["a"]["n"]) == (2, 2)  # the first file decides
    assert (table["b"]["good"], table["b"]["n"]) == (1, 2)
    assert "Cohen's kappa" in capsys.readouterr().out


def test_kappa_on_a_hand_made_case() -> None:
    # 10 items: agree on 8; reader A says GOOD 5 times, reader B 5 times.
    a = ["GOOD"] * 5 + ["SAME"] * 5
    b = ["GOOD"] * 4 + ["SAME"] + ["GOOD"] + ["SAME"] * 4
    assert cohen_kappa(a, b) == pytest.approx((0.8 - 0.5) / 0.5)
    assert cohen_kappa(a, a) == 1.0
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-3) and high == pytest.approx(0.7634, abs=1e-3)


def test_a_label_outside_the_rubric_names_file_and_line(tmp_path: Path) -> None:
    out = tmp_path / "reading"
    main(["reading-export", str(_items(tmp_path / "items.jsonl")), "--out", str(out)])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "r00000", "label": "GOOD"}\n{"id": "r00001", "label": "great"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: needs an id and a label"):
        from teams_rl.reading import merge_labels

        merge_labels(out, [bad], ["action"])


def test_a_generated_dataset_is_read_as_rewrites_of_their_previous_instruction(tmp_path: Path) -> None:
    row = {
        "messages": [
            {"role": "user", "content": "Explain tides and their causes."},
            {"role": "assistant", "content": "..."},
        ],
        "instruction": "Explain tides and their causes.",
        "previous_instruction": "Explain tides.",
        "action": "deepening",
        "output": "...",
        "policy": "uniform",
    }
    dataset = tmp_path / "dataset.jsonl"
    dataset.write_text(json.dumps(row) + "\n")
    out = tmp_path / "reading"
    assert main(["reading-export", str(dataset), "--out", str(out)]) == 0
    (blind,) = [json.loads(line) for line in (out / "blind_1.jsonl").read_text().splitlines()]
    assert (blind["instruction"], blind["rewrite"], blind["action"]) == (
        "Explain tides.",
        "Explain tides and their causes.",
        "deepening",
    )


def test_the_pipeline_report_shows_the_good_share_once_the_dataset_is_read(tmp_path: Path) -> None:
    from teams_rl.pipeline_report import _reading_line

    folder = tmp_path / "data" / "reading"
    assert "Read blind: not yet" in _reading_line(folder)
    items = tmp_path / "items.jsonl"
    _items(items)
    main(["reading-export", str(items), "--out", str(folder)])
    blind = [json.loads(line) for line in (folder / "blind_1.jsonl").read_text().splitlines()]
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(
            json.dumps({"id": row["id"], "label": "JUNK" if row["rewrite"] == "Bake bread." else "GOOD"})
            + "\n"
            for row in blind
        )
    )
    main(["reading-merge", str(folder), "--labels", str(labels)])
    assert "**Read blind: 75% GOOD** (3 of 4 read; 95% interval" in _reading_line(folder)
