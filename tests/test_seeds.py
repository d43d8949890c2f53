"""Seed loading: the bundled set, Alpaca JSON, JSONL; bad rows are counted skips and unreadable
files are one-line errors naming the file."""

from __future__ import annotations

import json

import pytest

from teams_env.seeds import SeedFileError, load_seeds


def test_bundled_seeds_cover_many_domains():
    seeds = load_seeds()
    assert len(seeds) >= 100
    assert len({s.domain for s in seeds}) >= 10
    with_input = [s for s in seeds if s.input]
    assert with_input and all(s.text.endswith(s.input) for s in with_input)
    assert len({s.id for s in seeds}) == len(seeds)


def test_alpaca_json_list(tmp_path):
    path = tmp_path / "alpaca.json"
    rows = [
        {"instruction": "Give three tips for staying healthy.", "input": "", "output": "..."},
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
    ]
    path.write_text(json.dumps(rows), encoding="utf-8")
    seeds = load_seeds(path)
    assert [s.instruction for s in seeds] == [r["instruction"] for r in rows]
    assert seeds.seeds[1].text == "Translate to French.\n\nGood morning"
    assert load_seeds(path).seeds[0].id == seeds.seeds[0].id  # ids are stable across loads


def test_bad_rows_are_counted_and_located(tmp_path):
    path = tmp_path / "seeds.jsonl"
    lines = [
        json.dumps({"instruction": "Name three rivers in Africa."}),
        json.dumps({"text": "no instruction field"}),
        json.dumps({"instruction": "   "}),
        "{not json",
        json.dumps({"instruction": "Name three rivers in Africa."}),
        json.dumps(["a", "list"]),
        "",
        json.dumps({"instruction": "Describe a sunset."}),
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(SeedFileError) as error:  # bad input stops, naming the first bad line
        load_seeds(path)
    assert str(error.value).startswith(f"{path}:2: no 'instruction' text field")
    seeds = load_seeds(path, skip_bad_lines=True)
    assert [s.instruction for s in seeds] == ["Name three rivers in Africa.", "Describe a sunset."]
    assert dict(seeds.skipped) == {
        "no_instruction": 1,
        "empty_instruction": 1,
        "invalid_json": 1,
        "duplicate": 1,
        "not_an_object": 1,
    }
    assert any(p.startswith(f"{path}:4: invalid JSON") for p in seeds.problems)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"instruction": "ok"}\n\xff\xfe bad bytes', "not UTF-8 text"),
        (json.dumps({"instruction": "a dict, not a list"}).encode() + b"\n", None),
        (b'{"rows": [1, 2]', "invalid JSON"),
        (b"[]", "no usable seed instructions"),
        (json.dumps([{"input": "only input"}]).encode(), r"\[0\]: no 'instruction' text field"),
    ],
)
def test_unusable_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "seeds.json"
    path.write_bytes(content)
    if message is None:  # a single object is read as a one-line JSONL file, which is fine
        assert len(load_seeds(path)) == 1
        return
    with pytest.raises(SeedFileError, match=message) as error:
        load_seeds(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_json_that_is_not_a_list(tmp_path):
    path = tmp_path / "seeds.json"
    path.write_text('"just a string"', encoding="utf-8")
    with pytest.raises(SeedFileError, match="expected a JSON list"):
        load_seeds(path)


def test_missing_file(tmp_path):
    with pytest.raises(SeedFileError, match="seed file not found"):
        load_seeds(tmp_path / "nope.jsonl")


def test_limit_and_shuffle():
    everything = [s.id for s in load_seeds()]
    assert [s.id for s in load_seeds(limit=5)] == everything[:5]
    shuffled = [s.id for s in load_seeds(shuffle=True, seed=1)]
    assert sorted(shuffled) == sorted(everything) and shuffled != everything
    assert shuffled == [s.id for s in load_seeds(shuffle=True, seed=1)]
    with pytest.raises(ValueError, match="at least 1"):
        load_seeds(limit=0)
