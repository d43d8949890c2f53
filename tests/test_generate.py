"""Dataset generation: schema and provenance, the elimination rules, forced actions, resuming after
a kill, and bad seed files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from teams_env.llm.scripted import ScriptedBackend, scripted_reply
from teams_rl.agents.commands import GenerateConfig
from teams_rl.agents.generation.generate import generate
from teams_rl.agents.journal import Journal

ROW_KEYS = {
    "messages", "id", "instruction", "input", "output", "seed_id", "seed_instruction", "previous_instruction", "step", "action",
    "reviewer_p_not_equal", "expert", "reviewer", "responder", "policy",
}  # fmt: skip


LONG_TAIL = (
    " and then write a short poem about the moon rising over a quiet mountain lake at midnight, using "
    "vivid images of silver water, pine trees, drifting mist, distant owls and cold stones, in three "
    "stanzas with a gentle rhyme"
)
"""A rewrite's ending (under the expert's token limit, no repeated words) that outweighs any seed."""


def config(tmp_path: Path, **overrides) -> GenerateConfig:
    options = {
        "out": str(tmp_path / "out"),
        "expert": "scripted",
        "encoder": "hashing",
        "cache": "none",
        "limit": 6,
        "n_envs": 4,
        "reviewer_threshold": 0.5,
    }
    options.update(overrides)
    return GenerateConfig(**options)


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_schema_provenance_and_stats(tmp_path):
    out = generate(config(tmp_path))
    kept = read_rows(out / "dataset.jsonl")
    rejected = read_rows(out / "rejects.jsonl")
    stats = json.loads((out / "stats.json").read_text())
    assert kept and all(set(row) == ROW_KEYS for row in kept)
    for row in kept:
        assert row["messages"] == [
            {"role": "user", "content": row["instruction"]},
            {"role": "assistant", "content": row["output"]},
        ]
        assert row["instruction"] != row["seed_instruction"]
        assert row["id"] == f"{row['seed_id']}#{row['step']}" and 1 <= row["step"] <= 6
    assert stats["kept"] == len(kept) and stats["rejected"] == len(rejected)
    assert stats["candidates"] == 6 * 6 == len(kept) + len(rejected)
    assert sum(stats["rejected_by_rule"].values()) == len(rejected)
    assert stats["queries"]["expert"]["queries"] == 36 and stats["queries"]["responder"]["queries"] >= len(
        kept
    )
    assert stats["expert_queries_per_kept_item"] == pytest.approx(
        (36 + stats["queries"]["responder"]["queries"]) / len(kept)
    )
    assert "items kept: **" in (out / "README.md").read_text()
    from datasets import load_dataset

    loaded = load_dataset("json", data_files=str(out / "dataset.jsonl"), split="train")
    assert len(loaded) == len(kept) and loaded[0]["messages"][0]["role"] == "user"


def test_each_elimination_rule_removes_its_items(tmp_path):
    def expert_reply(conversation):
        text = scripted_reply(conversation)
        if "rarer case" in text:  # breadth rewrites leak the prompt's words
            return "As the rewritten prompt asks: " + text
        if "five sentences" in text:  # add_constraints changes nothing
            return text.replace(" Answer in at most five sentences.", "")
        return text

    def responder_reply(conversation):
        question = conversation[-1]["content"]
        if question.endswith("Reason step by step."):  # answers to the last rewrite only
            return "Sorry, I cannot do that."
        if "[3, 1, 2]" in question:  # the scripted complicate-input data
            return "It is what it is."
        return scripted_reply(conversation)

    out = generate(
        config(
            tmp_path,
            policy="fixed:breadth,add_constraints,increase_reasoning,complicate_input,deepening,concretizing",
        ),
        env_overrides={"expert": ScriptedBackend(reply=expert_reply)},
        responder=ScriptedBackend(reply=responder_reply),
    )
    rejected = read_rows(out / "rejects.jsonl")
    rules_by_action = {(row["action"], row["rule"]) for row in rejected}
    assert ("breadth", "leaked_prompt_words") in rules_by_action
    assert ("add_constraints", "no_new_information") in rules_by_action
    assert ("increase_reasoning", "sorry_answer") in rules_by_action
    assert ("complicate_input", "empty_answer") in rules_by_action
    kept = read_rows(out / "dataset.jsonl")
    assert {row["action"] for row in kept} <= {"deepening", "concretizing"}


def test_near_duplicates_are_dropped_and_logged(tmp_path):
    # Every rewrite of every seed ends with the same long text that outweighs the seed's few words
    # the expert's reply is made to begin with: only the first one survives.
    tail = LONG_TAIL
    breadth_only = [f"{step}:breadth" for step in range(1, 7)]  # replies begin with one seed word only
    out = generate(
        config(tmp_path, encoder="hashing", dedup_threshold=0.9, force_actions=breadth_only),
        env_overrides={"expert": ScriptedBackend(reply=lambda conv: tail)},
    )
    kept = read_rows(out / "dataset.jsonl")
    rejected = read_rows(out / "rejects.jsonl")
    assert len(kept) == 1
    duplicates = [row for row in rejected if row["rule"] == "near_duplicate"]
    assert duplicates and all(row["detail"] == f"similar to {kept[0]['id']}" for row in duplicates)


def test_forced_actions_override_the_policy(tmp_path):
    out = generate(
        config(
            tmp_path, force_actions=["1:breadth", "4:breadth"], replace_actions=["breadth:add_constraints"]
        )
    )
    rows = read_rows(out / "dataset.jsonl") + read_rows(out / "rejects.jsonl")
    for row in rows:
        if row["step"] in (1, 4):
            assert row["action"] == "breadth"
        else:
            assert row["action"] != "breadth"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"force_actions": ["9:breadth"]}, "step must be 1..6"),
        ({"force_actions": ["1:sideways"]}, "unknown action 'sideways'"),
        ({"replace_actions": ["breadth"]}, "expected A:B"),
    ],
)
def test_bad_forcing_options(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        generate(config(tmp_path, **overrides))


def test_resume_after_a_partial_journal_line_gives_the_same_dataset(tmp_path):
    whole = generate(config(tmp_path / "a"))
    broken = config(tmp_path / "b", limit=4)
    generate(broken)  # the first 4 seeds (one batch)
    journal = Path(broken.out) / "progress.jsonl"
    with open(journal, "a", encoding="utf-8") as handle:
        handle.write('{"seeds": [{"seed_id": "seed-005", "kept": [')  # killed mid-write
    (Path(broken.out) / "dataset.jsonl").write_text("", encoding="utf-8")  # and before the dataset append
    resumed = generate(config(tmp_path / "b"))  # same options, limit 6: continues with seeds 5-6
    assert (resumed / "dataset.jsonl").read_text() == (whole / "dataset.jsonl").read_text()
    assert (resumed / "rejects.jsonl").read_text() == (whole / "rejects.jsonl").read_text()
    assert len(Journal(journal).records) == 2
    stats = json.loads((resumed / "stats.json").read_text())
    assert stats["runs"] == 2 and stats["seeds"]["done"] == 6


def test_resuming_with_other_options_is_refused(tmp_path):
    generate(config(tmp_path, limit=2))
    with pytest.raises(ValueError, match="generated with other options \\(dedup_threshold"):
        generate(config(tmp_path, limit=2, dedup_threshold=0.5))


def test_resuming_with_another_number_of_envs_is_refused(tmp_path):
    generate(config(tmp_path, limit=2, n_envs=2))  # n_envs decides the batches, hence their seeds
    with pytest.raises(ValueError, match="generated with other options \\(n_envs: 2, now 1\\)"):
        generate(config(tmp_path, limit=2, n_envs=1))


def test_a_candidate_whose_answer_is_rejected_does_not_remove_its_duplicates(tmp_path):
    tail = LONG_TAIL  # every rewrite alike
    asked: list[str] = []

    def responder_reply(conversation):
        asked.append(conversation[-1]["content"])
        return "Sorry, I cannot do that." if len(asked) == 1 else scripted_reply(conversation)

    out = generate(
        config(tmp_path, dedup_threshold=0.9, force_actions=[f"{step}:breadth" for step in range(1, 7)]),
        env_overrides={"expert": ScriptedBackend(reply=lambda conv: tail)},
        responder=ScriptedBackend(reply=responder_reply),
    )
    kept = read_rows(out / "dataset.jsonl")
    rejected = read_rows(out / "rejects.jsonl")
    sorry = [row for row in rejected if row["rule"] == "sorry_answer"]
    assert len(sorry) == 1 and len(kept) == 1  # the first twin's answer failed: the next one is kept
    assert (kept[0]["seed_id"], kept[0]["step"]) > (sorry[0]["seed_id"], sorry[0]["step"])  # the next twin
    duplicates = [row for row in rejected if row["rule"] == "near_duplicate"]
    assert duplicates and all(row["detail"] == f"similar to {kept[0]['id']}" for row in duplicates)
    assert len(asked) == 2  # duplicates were never answered


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "seed file not found"),
        (b'{"not": "a list"}', r"seeds.json:1: no 'instruction' text field; fix the line"),
        (b"[1, 2, 3]", r"seeds.json\[0\]: expected an object, got int"),
        (b'[{"input": "x"}]', r"seeds.json\[0\]: no 'instruction' text field"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_unusable_seed_files_stop_before_any_work(tmp_path, content, message):
    seeds = tmp_path / "seeds.json"
    if content is not None:
        seeds.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        generate(config(tmp_path, seeds=str(seeds)))
    assert (
        not (tmp_path / "out" / "dataset.jsonl").exists()
        or not (tmp_path / "out" / "dataset.jsonl").read_text()
    )


def test_bad_rows_are_counted_skips(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(
        "\n".join(
            [
                json.dumps({"instruction": "Describe a lighthouse."}),
                json.dumps({"instruction": ""}),
                json.dumps({"output": "no instruction"}),
                json.dumps({"instruction": "Describe a lighthouse."}),
                json.dumps({"instruction": "List three uses of salt."}),
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"seeds.jsonl:2: empty 'instruction'; .*--skip-bad-lines"):
        generate(config(tmp_path, seeds=str(seeds)))
    out = generate(config(tmp_path, seeds=str(seeds), skip_bad_lines=True))
    stats = json.loads((out / "stats.json").read_text())
    assert stats["seeds"]["loaded"] == 2
    assert stats["seeds"]["skipped_while_loading"] == {
        "empty_instruction": 1,
        "no_instruction": 1,
        "duplicate": 1,
    }


def _journal_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_killed_with_a_signal_and_resumed_equals_an_uninterrupted_run(tmp_path):
    base = [
        sys.executable, "-m", "teams_rl.cli", "generate", "--expert", "scripted?delay=0.05", "--encoder", "hashing",
        "--reviewer-threshold", "0.5", "--limit", "12", "--n-envs", "2",
    ]  # fmt: skip
    # Separate caches: a cache warmed by the whole run would let the second run finish before the kill.
    whole = subprocess.run(
        [*base, "--out", str(tmp_path / "whole"), "--cache", str(tmp_path / "whole.sqlite")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert whole.returncode == 0, whole.stderr[-2000:]

    out = tmp_path / "killed"
    killed = [*base, "--out", str(out), "--cache", str(tmp_path / "killed.sqlite")]
    process = subprocess.Popen(killed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _journal_lines(out / "progress.jsonl") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)
    done_before = _journal_lines(out / "progress.jsonl")
    assert 2 <= done_before < 6  # stopped midway

    resumed = subprocess.run(killed, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (out / "dataset.jsonl").read_text() == (tmp_path / "whole" / "dataset.jsonl").read_text()
    assert (out / "rejects.jsonl").read_text() == (tmp_path / "whole" / "rejects.jsonl").read_text()
    ids = [json.loads(line)["id"] for line in (out / "dataset.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids))


@pytest.mark.slow
def test_end_to_end_on_the_embedded_model(tmp_path):
    out = generate(GenerateConfig(out=str(tmp_path / "real"), limit=3, n_envs=3, answer_max_new_tokens=96))
    kept = read_rows(out / "dataset.jsonl")
    rejected = read_rows(out / "rejects.jsonl")
    stats = json.loads((out / "stats.json").read_text())
    assert stats["kept"] == len(kept) and stats["rejected"] == len(rejected) and stats["candidates"] == 18
    assert kept, "the embedded model kept nothing"
    for row in kept:
        assert set(row) == ROW_KEYS
        assert row["output"].strip() and row["instruction"].strip() != row["seed_instruction"].strip()
        # The default expert is the specialist; its base model (no adapter) judges and answers.
        assert row["expert"].startswith(
            "specialist:SmolLM2-135M-Instruct.Q4_1.gguf@"
        )  # name and content hash
        assert "+lora=specialist_expert.gguf@" in row["expert"]
        assert row["reviewer"] == row["responder"]
        assert row["reviewer"].startswith("llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf@")
        assert row["policy"] == "uniform"


def test_invalid_rewrites_are_eliminated_by_rule_5(tmp_path):
    loop = " the recipe" * 20  # a loop that outweighs any seed, under every token limit
    out = generate(config(tmp_path), env_overrides={"expert": ScriptedBackend(reply=lambda conv: loop)})
    rejected = read_rows(out / "rejects.jsonl")
    assert not read_rows(out / "dataset.jsonl")
    assert rejected and all(row["rule"] == "invalid_instruction" for row in rejected)
    assert {row["detail"] for row in rejected} == {"repetitive"}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["rejected_by_rule"] == {"invalid_instruction": len(rejected)}


def test_a_rewrite_the_good_head_refuses_is_eliminated_by_rule_6():
    """Generation keeps what the env pays for: a valid Not Equal rewrite that the judge's GOOD head
    calls no good evolution for its action is dropped, with P(GOOD) and the action as the reason;
    with no GOOD head (good is None) it is kept."""
    from teams_env.reward.formula import rewarded_in
    from teams_env.seeds import SeedInstruction
    from teams_rl.agents.generation.generate import rewrite_rule

    seed = SeedInstruction("s", "Explain photosynthesis.")
    info = {
        "rewrite_failure": None,
        "leaked_phrase": None,
        "valid": True,
        "invalid_reason": None,
        "p_valid": 0.99,
        "verdict": "Not Equal",
        "p_not_equal": 0.97,
        "instruction": "Explain photosynthesis in C4 plants, and compare it with CAM plants.",
        "action_name": "deepening",
    }
    refused = {**info, "good": False, "p_good": 0.12}
    assert rewrite_rule(seed, refused) == ("not_good", "judge P(GOOD)=0.12 for deepening")
    assert rewrite_rule(seed, {**info, "good": True, "p_good": 0.91}) == (None, "")
    assert rewrite_rule(seed, {**info, "good": None, "p_good": None}) == (None, "")
    for step in (refused, {**info, "good": True}, {**info, "good": None}):  # kept exactly when paid
        assert (rewrite_rule(seed, step)[0] is None) == rewarded_in(step)
