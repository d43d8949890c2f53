"""A reviewer of the user's own, as a bigger model would be used: ``teams-rl train-reviewer
--reviewer hf:MODEL --good-labels ...`` fits a head on that model's hidden states, and the live env
judges with it (the embedded model's transformers folder stands in for the bigger model)."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

import teams_env  # registers the envs; its folder holds set A
from teams_env.llm.embedded import embedded_hf_dir
from teams_env.llm.scripted import ScriptedBackend
from teams_env.reward.review_head import ReviewHead
from teams_rl.cli import main
from teams_rl.reviewer_commands import good_training_rows

pytestmark = pytest.mark.slow

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "reward_reading"
BENCH_A = Path(teams_env.__file__).resolve().parent / "data" / "reviewer_bench.jsonl"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def test_a_head_trained_on_an_hf_reviewer_judges_the_live_env(tmp_path):
    train_pairs = [pair for pair in _lines(BENCH_A) if pair["split"] == "train"]
    bases = sorted({pair["base"] for pair in train_pairs})[:10]
    bench = _write(tmp_path / "pairs.jsonl", [pair for pair in train_pairs if pair["base"] in bases])
    labelled = [row for row in _lines(RESULTS / "specialist" / "labelled.jsonl") if row["split"] == "train"]
    good = [row for row in labelled if row["label"] == "GOOD"][:20]
    labels = _write(
        tmp_path / "labelled.jsonl", good + [row for row in labelled if row["label"] != "GOOD"][:30]
    )
    reviewer = f"hf:{embedded_hf_dir()}"
    out = tmp_path / "head.json"
    args = ["--reviewer", reviewer, "--bench", bench, "--good-labels", labels, "--cache", "none"]
    assert main(["train-reviewer", *args, "--out", str(out)]) == 0

    head = ReviewHead.load(out)
    assert head.good is not None
    assert head.training["good"]["rows"] == len(good_training_rows([labels], head.rules)) > 30
    env = gym.make(
        "TeaMsInstructDiscrete-v1",
        expert=ScriptedBackend(),
        reviewer=reviewer,
        reviewer_head=str(out),
        review_method="head",  # fail, rather than fall back, if the head does not fit the reviewer
        cache=None,
    )
    env.reset(seed=0)
    _, reward, *_, info = env.step(1)
    assert env.unwrapped.engine.reviewer.head.fingerprint == head.fingerprint
    assert info["review_method"] == "head" and 0.0 <= info["p_good"] <= 1.0
    assert reward == float(info["good"] and info["valid"] and info["verdict"] == "Not Equal")
