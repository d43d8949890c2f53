"""The junk detectors (teams_env.reward.junk_rules): each on junk it must find and on coherent data it must pass."""

from __future__ import annotations

import pytest

from teams_env.reward.junk_rules import (
    added_data,
    demonstration_leak,
    demonstration_spans,
    filler_steps,
    junk_reasons,
    malformed_data,
    missing_input,
    placeholder_table,
    repeated_block,
    split_blocks,
    unreferenced_data,
)

QUESTION = "Find the cheapest fruit."
TABLE = "| fruit | price |\n|---|---|\n| apple | 3 |\n| pear | 4 |\n| plum | 2 |"
CODE = "```python\ndef cheapest(prices):\n    return min(prices, key=prices.get)\n```"
ROWS = "| fruit | price |\n| apple | 3 |\n| pear | 4 |\n| plum | 2 |"
JSON = '{\n  "apple": 3,\n  "pear": 4,\n  "plum": [2, {"unit": "kg"}]\n}'


def test_blocks_and_prose_are_told_apart():
    text = f"{QUESTION}\n\n{TABLE}\n\n{CODE}\n\n{JSON}\n\n[Insert your name here]\n{{% highlight %}}"
    blocks, prose = split_blocks(text)
    assert [block.kind for block in blocks] == ["table", "code", "json"]
    assert blocks[1].lines == ("def cheapest(prices):", "    return min(prices, key=prices.get)")
    assert [line for line in prose if line] == [QUESTION, "[Insert your name here]", "{% highlight %}"]


@pytest.mark.parametrize(
    "text, snippet",
    [
        (f"{QUESTION}\n\n{TABLE}\n\n{TABLE}", ROWS),  # a table pasted twice
        (f"{QUESTION}\n\n{TABLE}\n{TABLE}", "| fruit | price |"),  # ... with no blank line between
        (f"{QUESTION}\n\n{CODE}\n\n{CODE}", "def cheapest(prices):\nreturn min(prices, key=prices.get)"),
        (f"{QUESTION}\n\n{JSON}\n{JSON}", None),  # checked by its start below
        (f"{QUESTION}\n\n{QUESTION}", "Find the cheapest fruit."),
    ],
)
def test_a_repeated_block_is_found(text, snippet):
    found = repeated_block(text)
    assert found is not None
    assert found == snippet if snippet else found.startswith('{\n"apple": 3,')


@pytest.mark.parametrize(
    "text",
    [
        f"{QUESTION}\n\n{TABLE}\n\n{CODE}\n\n{JSON}",
        # Lines that legitimately repeat: a separator row, short code lines, a JSON field, blank lines.
        "Sum each column.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n|---|---|\n| 1 | 3 |",
        "Explain the loops.\n\n```python\nfor x in xs:\n    print(x)\nfor x in xs:\n    print(x)\n```",
        'Group the items.\n\n[\n  {"name": "tea", "unit": "grams per cup"},\n  {"name": "rice", "unit": "grams per cup"}\n]',
    ],
)
def test_coherent_text_repeats_no_block(text):
    assert repeated_block(text) is None


def test_the_demonstration_spans_are_what_the_demonstrations_added():
    spans = demonstration_spans()
    assert ("without", "a", "car", "a", "freezer", "or") in spans
    # In the demonstration's own instruction ("Give three tips for saving money."): not added.
    assert ("give", "three", "tips", "for", "saving", "money") not in spans
    assert all(len(span) == 6 for span in spans)


def test_a_copied_demonstration_phrase_is_found():
    before = "How do I cook rice?"
    after = "How do I cook rice in ways that work without a car, a freezer or bulk buying?"
    assert demonstration_leak(before, after) == "that work without a car a"


def test_a_demonstration_phrase_already_there_or_rephrased_is_no_leak():
    before = "Plan meals that work without a car, a freezer or an oven."
    assert demonstration_leak(before, before + " Use only a microwave.") is None
    assert demonstration_leak("Plan meals.", "Plan meals that need neither a car nor a freezer.") is None


@pytest.mark.parametrize(
    "text",
    [
        f"{QUESTION}\n\n```python\ndef cheapest(prices):\n    return min(",  # fence never closed
        f"{QUESTION}\n\n```python\ndef cheapest(prices):\n    return min(prices\n```",  # bracket left open
        f"{QUESTION}\n\n```python\nprint(sorted(xs)[::-1]))\n```",  # a stray closer
        f'{QUESTION}\n\n{{\n  "apple": 3,\n  "pe',  # JSON cut off inside a key
        f'{QUESTION}\n\n{{\n  "apple": 3,\n}}',  # a trailing comma
        f'{QUESTION}\n\n{{\n  "apple": {{"price": 3}}\n\n| a | b |\n|---|---|',  # JSON left for a table
    ],
)
def test_malformed_data_is_found(text):
    assert malformed_data(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        f"{QUESTION}\n\n{TABLE}\n\n{CODE}\n\n{JSON}",
        # Brackets inside strings and comments do not count; an apostrophe in prose is no string.
        "Explain this.\n\n```python\nprint(\"(unclosed\")  # a smiley :)\nx = {'a': [1, 2]}\n```\n\nIt's fine.",
        'Parse it.\n\n{\n  "note": "a } inside a string, and a \\" quote",\n  "n": [1, 2]\n}',
        "```js\nconst f = (a) => { return a // 2; };\n```",
    ],
)
def test_well_formed_data_passes(text):
    assert malformed_data(text) is None


@pytest.mark.parametrize(
    "table",
    [
        "| grain | grams |\n|---|---|\n| ancient_grain1 | 250 |\n| ancient_grain2 | 300 |",
        "| item | price |\n|---|---|\n| item1 | 25 |\n| item2 | 40 |",
        "| name | value |\n|---|---|\n| <name> | ... |\n| [value] | TBD |",
        "| a | b |\n|---|---|\n| N/A | xxx |\n| | |",
        "| a | b |\n|---|---|\n| | |\n| | |",
        "| text | notes |\n|---|---|\n| Lorem ipsum dolor | 3 |\n| Lorem ipsum sit | 4 |",
    ],
)
def test_a_table_of_placeholders_is_found(table):
    assert placeholder_table(f"{QUESTION}\n\n{table}") is not None


@pytest.mark.parametrize(
    "table",
    [
        TABLE,
        "| model | year |\n|---|---|\n| Windows10 | 2015 |\n| python3 | 2008 |",  # real names with numbers
        "| cell | value |\n|---|---|\n| A1 | 12 |\n| B2 | 7 |",
        "| question | answer |\n|---|---|\n| 2 + 2 | |\n| 3 * 5 | |",  # a table to fill in
        "| step | note |\n|---|---|\n| mix | ... |\n| bake | 20 min |\n| cool | 1 hour |",
    ],
)
def test_a_real_table_is_no_placeholder_table(table):
    assert placeholder_table(f"{QUESTION}\n\n{table}") is None


def test_added_data_names_the_kinds_a_rewrite_adds():
    assert added_data(QUESTION, f"{QUESTION}\n\n{TABLE}\n\n{JSON}") == ["table", "json"]
    assert added_data(f"{QUESTION}\n\n{TABLE}", f"{QUESTION}\n\n{TABLE}\n\n{CODE}") == ["code"]
    assert added_data(f"{QUESTION}\n\n{TABLE}", f"{QUESTION} Use kilograms.\n\n{TABLE}") == []
    # A second table is added data even though the instruction had one.
    assert added_data(f"{QUESTION}\n\n{TABLE}", f"{QUESTION}\n\n{TABLE}\n\n{TABLE}") == ["table"]


def test_data_the_prose_never_refers_to_is_flagged():
    assert unreferenced_data("Why is the sky blue?", f"Why is the sky blue?\n\n{TABLE}") == TABLE
    assert unreferenced_data("Why?", "Why?\n\n```\n```") == "(an empty code block)"


@pytest.mark.parametrize(
    "after",
    [
        f"Find the cheapest fruit in the table.\n\n{TABLE}",
        f"Find the cheapest fruit using the following prices.\n\n{JSON}",
        f"Explain what this function does.\n\n{CODE}",
        QUESTION + " Use kilograms.",  # no data added
    ],
)
def test_data_the_prose_refers_to_is_not_flagged(after):
    assert unreferenced_data(QUESTION, after) is None


def test_junk_reasons_name_each_detector_that_fires_on_new_junk():
    before = "Give three tips for saving money."
    after = (
        "Give three tips for saving money that work without a car, a freezer or bulk buying.\n\n"
        + "| tip | saving |\n|---|---|\n| tip_1 | ... |\n| tip_2 | ... |\n\n"
        + "| tip | saving |\n|---|---|\n| tip_1 | ... |\n| tip_2 | ... |\n\n"
        + '{\n  "tips": ['
    )
    reasons = junk_reasons(before, after)
    assert set(reasons) == {"repeated_block", "demonstration_leak", "malformed_data", "placeholder_table"}
    assert reasons["demonstration_leak"] == "that work without a car a"
    assert "unreferenced_data" in junk_reasons(before, after, heuristics=True)


def test_junk_the_instruction_already_had_is_not_the_rewrites():
    before = f"{QUESTION}\n\n{TABLE}\n\n{TABLE}\n\n```python\nprint(1"
    after = f"{QUESTION} Answer in one word.\n\n{TABLE}\n\n{TABLE}\n\n```python\nprint(1"
    assert repeated_block(after) is not None and malformed_data(after) is not None
    assert junk_reasons(before, after) == {}
    assert junk_reasons(QUESTION, f"{QUESTION}\n\n{TABLE}\n\n{CODE}") == {}


SLEEP = "Why is getting enough sleep important for memory?"


@pytest.mark.parametrize(
    "after, snippet",
    [
        (
            f"{SLEEP} First, explain what sleep is. Second, compare sleep to memory.",
            "First, explain what sleep is",
        ),
        (f"{SLEEP} Then, give the answer.", "Then, give the answer"),
        (f"{SLEEP} Finally, state your final answer in one line.", "Finally, state your final answer"),
    ],
)
def test_template_reasoning_steps_are_filler(after, snippet):
    assert filler_steps(SLEEP, after) == snippet


@pytest.mark.parametrize(
    "after",
    [
        # Real steps: a concept the instruction does not name, an answer the task asks to weigh.
        f"{SLEEP} First, explain what REM cycles are, then relate them to how memories consolidate.",
        f"{SLEEP} Compare a night of 4 hours with one of 8, then say which study supports each claim.",
        "What is sleep? Explain what sleep is in terms of brain waves.",  # no step marker
    ],
)
def test_real_reasoning_steps_are_not_filler(after):
    assert filler_steps(SLEEP, after) is None


def test_filler_the_instruction_already_had_is_not_the_rewrites():
    before = f"{SLEEP} First, explain what sleep is."
    assert filler_steps(before, before + " Answer in under 100 words.") is None
    assert filler_steps(before, before + " Then, give the answer.") == "Then, give the answer"


LAPTOPS = "Compare the two laptops in the table below and recommend one for a student."


@pytest.mark.parametrize(
    "after, snippet",
    [
        (LAPTOPS, "the table below"),
        ("Classify each item in the list below as an element or a compound.", "the list below"),
        ("Fix the bug in the following code, explaining each change.", "the following code"),
    ],
)
def test_a_reference_to_input_the_rewrite_dropped_is_found(after, snippet):
    before = f"{LAPTOPS}\n\n| model | RAM |\n|---|---|\n| A | 8 GB |\n| B | 16 GB |"
    assert missing_input(before, after) == snippet


@pytest.mark.parametrize(
    "after",
    [
        f"{LAPTOPS}\n\n| model | RAM |\n|---|---|\n| A | 8 GB |",  # the input is there
        "Compare two laptops for a student who edits video, on price, RAM and battery life.",
        "Describe the table manners expected at a formal dinner below deck on a ship.",
        "Sort the list below from smallest to largest: 12, 3, 45, 7.",  # the input on the same line
    ],
)
def test_an_instruction_that_carries_its_input_or_names_none_passes(after):
    assert missing_input(f"{LAPTOPS}\n\n| model | RAM |\n|---|---|\n| A | 8 GB |", after) is None


def test_an_instruction_that_already_lacked_its_input_is_not_the_rewrites_doing():
    assert missing_input(LAPTOPS, LAPTOPS.replace("student", "nurse")) is None


def test_judge_rules_apply_only_where_the_head_names_them():
    from teams_env.reward.validity import InvalidReason, rule_violation

    after = f"{SLEEP} First, explain what sleep is. Then, give the answer."
    assert rule_violation(SLEEP, after) is None
    assert rule_violation(SLEEP, after, judge_rules=("filler_steps",)) is InvalidReason.FILLER_STEPS
    assert rule_violation(LAPTOPS + "\n\n| a |\n|---|\n| 1 |", LAPTOPS, judge_rules=("missing_input",)) is (
        InvalidReason.MISSING_INPUT
    )
