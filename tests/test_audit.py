"""``teams-rl audit`` (teams_rl.agents.benchmark.reward_audit) on a pack written by hand, whose rates, junk counts and
ceilings are worked out below."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teams_env.actions import ACTION_NAMES
from teams_env.replay.pack import Node, load_pack, write_pack
from teams_rl.agents.benchmark.reward_audit import audit_markdown, audit_pack
from teams_rl.cli import main

ADD_CONSTRAINTS, COMPLICATE_INPUT = (
    ACTION_NAMES.index("add_constraints"),
    ACTION_NAMES.index("complicate_input"),
)
SEEDS = {"sky": "Why is the sky blue?", "sea": "Why is the sea salty?"}
LEAK = "Keep to tips that work without a car, a freezer or bulk buying."  # add_constraints' demonstration
TABLE = "| sea | salt |\n|---|---|\n| Dead Sea | 34% |\n| Baltic | 0.7% |"
PLACEHOLDERS = "| sea | salt |\n|---|---|\n| sea_1 | ... |\n| sea_2 | ... |"
CUT_OFF_JSON = '{\n  "sea": '


def rewrite(state: str, path: tuple[int, ...]) -> str:
    """add_constraints copies a demonstration phrase; complicate_input adds a table (after
    concretizing: JSON cut off; after increase_reasoning: placeholders); the others add a sentence."""
    action = path[-1]
    if action == ADD_CONSTRAINTS:
        return f"{state}\n{LEAK}"
    if action == COMPLICATE_INPUT:
        data = {(3, 5): CUT_OFF_JSON, (4, 5): PLACEHOLDERS}.get(path, TABLE)
        return f"{state}\n\n{data}"
    return f"{state}\nAnswer it in {action + 2} sentences."


def rewarded(seed_id: str, path: tuple[int, ...]) -> bool:
    """The sky seed pays for add_constraints, the sea seed for complicate_input, at every depth."""
    return path[-1] == {"sky": ADD_CONSTRAINTS, "sea": COMPLICATE_INPUT}[seed_id]


def _nodes(seed_id: str, state: str, path: tuple[int, ...], depth: int) -> list[Node]:
    if len(path) == depth:
        return []
    nodes = []
    for action in range(len(ACTION_NAMES)):
        child = (*path, action)
        text, paid = rewrite(state, child), rewarded(seed_id, child)
        info = {
            "verdict": "Not Equal" if paid else "Equal",
            "p_not_equal": 0.9 if paid else 0.2,
            "p_valid": 0.8,
        }
        nodes.append(Node(seed_id, child, text, text, float(paid), {"expert": 1, "reviewer": 1}, info))
        nodes += _nodes(seed_id, text, child, depth)
    return nodes


@pytest.fixture(scope="module")
def pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    nodes = [Node(seed_id, (), text, text) for seed_id, text in SEEDS.items()]
    for seed_id, text in SEEDS.items():
        nodes += _nodes(seed_id, text, (), depth=2)
    manifest = {
        "depth": 2,
        "seeds": [{"id": seed_id, "text": text} for seed_id, text in SEEDS.items()],
        "action_names": list(ACTION_NAMES),
        "encoder": "hashing:384",
        "encoder_dim": 384,
        "encoder_spec": "hashing:384",
        "on_failure": "revert",
        "leak_penalty": 0.0,
    }
    return write_pack(tmp_path_factory.mktemp("pack") / "pack", manifest, nodes)


@pytest.fixture(scope="module")
def audit(pack_dir: Path) -> dict:
    return audit_pack(load_pack(pack_dir), samples=2, seed=3)


def test_reward_rates_per_action_and_depth(audit):
    assert (audit["nodes"], audit["rewarded"]) == (2 * (6 + 36), 14)
    for name in ("add_constraints", "complicate_input"):  # one seed of two pays for it
        assert audit["rates"][name]["1"] == {"nodes": 2, "rewarded": 1, "rate": 0.5}
        assert audit["rates"][name]["2"] == {"nodes": 12, "rewarded": 6, "rate": 0.5}
        assert audit["rates"][name]["all"] == {"nodes": 14, "rewarded": 7, "rate": 0.5}
    assert audit["rates"]["breadth"]["all"] == {"nodes": 14, "rewarded": 0, "rate": 0.0}
    assert audit["rates"]["all"]["1"] == {"nodes": 12, "rewarded": 2, "rate": 2 / 12}
    assert audit["rates"]["all"]["all"] == {"nodes": 84, "rewarded": 14, "rate": 14 / 84}


def test_the_best_fixed_sequence_against_the_optimum(audit):
    # Optimal: the seed's own action twice, 2 per seed. Fixed: any pair of add_constraints and
    # complicate_input earns 1 per seed on average; the first found is add_constraints twice.
    # Uniform: 1/6 a step, 1/3 an episode.
    ceilings = audit["ceilings"]
    assert ceilings["best_fixed"] == ["add_constraints", "add_constraints"]
    assert ceilings["best_fixed_return"] == pytest.approx(1.0)
    assert ceilings["optimal_return"] == pytest.approx(2.0)
    assert ceilings["uniform_return"] == pytest.approx(1 / 3)
    assert ceilings["share_of_gap"] == pytest.approx((1 - 1 / 3) / (2 - 1 / 3))
    assert ceilings["share_of_optimal"] == pytest.approx(0.5)


def test_junk_among_the_rewarded_steps(audit):
    junk = audit["junk"]
    rewarded = {name: row["rewarded"] for name, row in junk["detectors"].items()}
    # sky: add_constraints copies the phrase at (1,) and after each other action (5 steps); at
    # (1, 1) the phrase was there already and the line repeats. sea: complicate_input adds data at
    # 7 steps, never named by the prose: the table twice at (5, 5), JSON cut off at (3, 5),
    # placeholders at (4, 5).
    assert rewarded == {
        "repeated_block": 2,
        "demonstration_leak": 6,
        "malformed_data": 1,
        "placeholder_table": 1,
        "unreferenced_data": 7,
        "added_data": 7,
    }
    assert junk["detectors"]["demonstration_leak"]["share_of_rewarded"] == pytest.approx(6 / 14)
    assert junk["detectors"]["unreferenced_data"]["heuristic"]
    assert junk["added_kinds"] == {"table": 6, "code": 0, "json": 1}
    assert junk["per_action"]["add_constraints"] == {
        "repeated_block": 1,
        "demonstration_leak": 6,
        "malformed_data": 0,
        "placeholder_table": 0,
        "unreferenced_data": 0,
        "added_data": 0,
    }
    assert junk["per_action"]["complicate_input"]["repeated_block"] == 1
    assert junk["per_action"]["complicate_input"]["added_data"] == 7
    assert junk["top_demonstration_leaks"] == [{"span": "that work without a car a", "count": 6}]


def test_samples_are_rewarded_steps_with_the_instruction_before_and_the_judge(audit, pack_dir):
    pack = load_pack(pack_dir)
    samples = audit["samples"]
    assert [len(samples[name]) for name in ACTION_NAMES] == [0, 2, 0, 0, 0, 2]
    for sample in samples["add_constraints"] + samples["complicate_input"]:
        path = tuple(ACTION_NAMES.index(name) for name in sample["path"])
        assert sample["before"] == pack.node(sample["seed_id"], path[:-1]).state
        assert sample["rewrite"] == pack.node(sample["seed_id"], path).instruction
        assert sample["reward"] == 1.0
        assert sample["judge"] == {"p_not_equal": 0.9, "p_valid": 0.8, "verdict": "Not Equal"}
    assert audit_pack(pack, samples=2, seed=3)["samples"] == samples  # seeded


def test_markdown_keeps_the_samples_code_inside_its_fences(audit):
    page = audit_markdown(audit)
    assert "| complicate_input | 50.0% (1/2) | 50.0% (6/12) | 50.0% (7/14) |" in page
    assert "add_constraints, add_constraints" in page
    long_text = "```python\nprint(1)\n```\n" + "x" * 1000
    sample = {"seed_id": "s", "path": ["breadth"], "before": "b", "rewrite": long_text, "reward": 1.0}
    lines = audit_markdown({**audit, "samples": {"breadth": [{**sample, "judge": {}, "junk": {}}]}})
    assert "````text\n```python\nprint(1)\n```" in lines and "[... " in lines


def test_the_command_writes_both_files(pack_dir, tmp_path, capsys):
    out = tmp_path / "audit"
    assert main(["audit", str(pack_dir), "--out", str(out), "--samples", "1"]) == 0
    written = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert written["rewarded"] == 14 and written["ceilings"]["best_fixed"] == ["add_constraints"] * 2
    assert (out / "audit.md").read_text(encoding="utf-8").startswith("# Pack audit")
    assert "14 of 84 steps rewarded" in capsys.readouterr().out


def test_the_command_audits_the_replay_envs_other_rewards(pack_dir, tmp_path):
    out = tmp_path / "novelty"
    assert main(["audit", "--pack", str(pack_dir), "--reward", "novelty", "--out", str(out)]) == 0
    written = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    # Every rewrite adds words, so it is some distance from every earlier text of its episode.
    assert written["reward"] == "novelty" and written["rewarded"] == written["nodes"] == 84
    assert main(["audit", str(pack_dir), "--reward", "rubric", "--out", str(out)]) == 2


def test_the_command_reports_what_readers_said_of_rewarded_steps(pack_dir, tmp_path, capsys):
    sky, sea = SEEDS["sky"], SEEDS["sea"]
    labelled = [
        # Two rewarded steps of the sky seed, one GOOD; a rewarded one of the sea seed, JUNK.
        {"instruction": sky, "action": "add_constraints", "rewrite": f"{sky}\n{LEAK}", "label": "GOOD"},
        {
            "instruction": f"{sky}\n{LEAK}",
            "action": "add_constraints",
            "rewrite": f"{sky}\n{LEAK}\n{LEAK}",
            "label": "SAME",
        },
        {"instruction": sea, "action": "complicate_input", "rewrite": f"{sea}\n\n{TABLE}", "label": "JUNK"},
        # Unpaid (breadth is never rewarded) and unread rows do not count.
        {"instruction": sky, "action": "breadth", "rewrite": rewrite(sky, (0,)), "label": "GOOD"},
        {"instruction": sea, "action": "deepening", "rewrite": rewrite(sea, (2,))},
    ]
    labels = tmp_path / "labelled.jsonl"
    labels.write_text("".join(json.dumps(row) + "\n" for row in labelled), encoding="utf-8")
    out = tmp_path / "audit"
    assert main(["audit", str(pack_dir), "--out", str(out), "--labels", str(labels)]) == 0
    reading = json.loads((out / "audit.json").read_text(encoding="utf-8"))["reading"]
    assert reading["add_constraints"] | {"low": 0, "high": 0} == {
        "labelled": 2,
        "good": 1,
        "good_share": 0.5,
        "low": 0,
        "high": 0,
    }
    assert reading["complicate_input"]["good"] == 0 and reading["breadth"]["labelled"] == 0
    assert (reading["all"]["labelled"], reading["all"]["good"]) == (3, 1)
    assert "readers labelled 3 distinct rewarded steps: 1 GOOD (33%)" in capsys.readouterr().out
    assert "| add_constraints | 2 | 1 | 50.0% [" in (out / "audit.md").read_text(encoding="utf-8")
    labels.write_text('{"instruction": "x", "action": "breadth", "label": "GREAT"}\n', encoding="utf-8")
    assert main(["audit", str(pack_dir), "--out", str(out), "--labels", str(labels)]) == 2
    assert "labelled.jsonl:1: a labelled row needs" in capsys.readouterr().err
