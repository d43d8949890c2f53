"""Fault injection: what real runs meet. The expert server answers 429, 500, garbage or empty text,
or hangs; the reviewer names neither label; the disk fills; the process is killed in every stage of
the pipeline. Each run either recovers or stops with a one-line message, and running it again
resumes with nothing lost or duplicated. The suite counts the faults it tried and the records it
checked (printed at the end of the test session)."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAI, serve

from teams_env.env import TeaMsInstructEnv
from teams_env.llm.openai import OpenAIBackend
from teams_env.llm.scripted import ScriptedBackend
from teams_rl.agents.commands import GenerateConfig
from teams_rl.agents.generation.generate import generate
from teams_rl.agents.journal import Journal
from teams_rl.cli import main


@pytest.fixture
def faults(fault_tally):
    """Record ``(fault, records_checked)`` for the session summary."""
    return fault_tally


def env_on(fake: FakeOpenAI, **kwargs) -> TeaMsInstructEnv:
    expert = OpenAIBackend(
        "m", base_url=fake.url, max_retries=3, backoff=0.01, timeout=kwargs.pop("timeout", 5.0)
    )
    return TeaMsInstructEnv(
        expert=expert,
        reviewer=ScriptedBackend(),
        encoder="hashing",
        cache=None,
        reviewer_threshold=0.5,
        **kwargs,
    )


@pytest.mark.parametrize("fault", [429, 500, 503, "garbage", "hang"])
def test_the_expert_server_misbehaves_once_and_the_step_recovers(fault, faults):
    with serve(FakeOpenAI([fault], answer="Explain tides in two short paragraphs.")) as fake:
        env = env_on(fake, action_type="discrete", timeout=0.5)
        env.reset(seed=0, options={"instruction": "Explain tides."})
        _, reward, _, _, info = env.step(1)
    assert info["instruction"] == "Explain tides in two short paragraphs." and reward == 1.0
    assert len(fake.requests) == 2  # the failed attempt and its retry
    faults.record(f"expert server: {fault}", 1)


def test_the_expert_answers_empty_text_and_the_episode_goes_on(faults):
    with serve(FakeOpenAI(["empty"] * 6)) as fake:
        env = env_on(fake, action_type="discrete")
        env.reset(seed=0, options={"instruction": "Explain tides."})
        infos = [env.step(a)[4] for a in range(6)]
    assert all(i["rewrite_failure"] == "empty" and i["verdict"] == "Equal" for i in infos)
    assert infos[-1]["instruction"] == "Explain tides."
    faults.record("expert: empty text", len(infos))


def test_the_reviewer_names_neither_label(faults):
    reviewer = ScriptedBackend(reply=lambda conv: "Maybe, hard to say.", supports_scoring=False)
    env = TeaMsInstructEnv(
        expert=ScriptedBackend(), reviewer=reviewer, encoder="hashing", cache=None, action_type="discrete"
    )
    env.reset(seed=0)
    _, reward, _, _, info = env.step(2)
    assert (reward, info["verdict"], info["review_method"]) == (0.0, "Equal", "generate")
    faults.record("reviewer: neither label", 1)


def generate_config(out: Path, **overrides) -> GenerateConfig:
    options = {
        "out": str(out),
        "expert": "scripted",
        "encoder": "hashing",
        "cache": "none",
        "limit": 8,
        "n_envs": 2,
        "reviewer_threshold": 0.5,
    }
    return GenerateConfig(**{**options, **overrides})


def dataset_lines(out: Path) -> list[str]:
    return (out / "dataset.jsonl").read_text(encoding="utf-8").splitlines()


def check_complete(out: Path, seeds: int) -> int:
    """Every seed's rewrites are accounted for once: kept + rejected = 6 per seed, no id twice."""
    kept = [json.loads(line) for line in dataset_lines(out)]
    rejected = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    ids = [row["id"] for row in kept + rejected]
    assert len(ids) == len(set(ids)) == 6 * seeds
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["kept"], stats["rejected"]) == (len(kept), len(rejected))
    return len(ids)


def test_the_disk_fills_during_generation_and_a_rerun_resumes(tmp_path, monkeypatch, faults):
    reference = generate(generate_config(tmp_path / "clean"))
    appended = Journal.append
    calls = {"n": 0}

    def fill_the_disk(self, record):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        appended(self, record)

    monkeypatch.setattr(Journal, "append", fill_the_disk)
    out = tmp_path / "full"
    with pytest.raises(OSError, match="No space left on device"):
        generate(generate_config(out))
    assert len(Journal(out / "progress.jsonl").records) == 2  # what was finished stayed
    monkeypatch.setattr(Journal, "append", appended)
    generate(generate_config(out))
    assert dataset_lines(out) == dataset_lines(reference)
    faults.record("disk full while generating", check_complete(out, 8))


def test_a_persistently_failing_expert_stops_with_one_line_and_a_rerun_resumes(tmp_path, capsys, faults):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("\n".join(json.dumps({"instruction": f"Describe animal number {i}."}) for i in range(4)))
    with serve(FakeOpenAI([])) as fake:
        fake.answer = "Describe a cat in detail, with its diet and habitat."
        argv = [
            "generate", "--expert", f"openai:m?base_url={fake.url}&max_retries=1&backoff=0.01", "--reviewer", "scripted",
            "--encoder", "hashing", "--cache", "none", "--seeds", str(seeds), "--n-envs", "2",
            "--reviewer-threshold", "0.5", "--out", str(tmp_path / "out"), "--dedup-threshold", "1",
        ]  # fmt: skip
        fake.plan = ["ok"] * 24 + [500] * 40  # the first batch (12 rewrites + 12 answers) goes through
        assert main(argv) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
        assert error == f"teams-rl generate: error: {fake.url}/chat/completions: HTTP 500 after 2 attempts"
        assert 1 <= len(Journal(tmp_path / "out" / "progress.jsonl").records) < 2
        fake.plan = []
        assert main(argv) == 0
    faults.record("expert server down mid-run", check_complete(tmp_path / "out", 4))


def test_a_full_disk_under_the_cache_costs_nothing(tmp_path, faults, caplog):
    cache = tmp_path / "cache.sqlite"
    expert = ScriptedBackend()
    env = TeaMsInstructEnv(
        expert=expert,
        encoder="hashing",
        cache=cache,
        reviewer_threshold=0.5,
        action_type="discrete",
    )
    import sqlite3

    writes = []

    def full(items):
        writes.append(len(items))
        raise sqlite3.OperationalError("database or disk is full")

    service = env.engine.expert
    service.cache.put_many = full  # the shared cache object of this file
    env.reset(seed=0)
    with caplog.at_level(logging.WARNING, logger="teams_env.llm.service"):
        infos = [env.step(a)[4] for a in range(6)]
    assert all(info["instruction"] for info in infos)  # every answer paid for was used
    assert expert.requests["generate"] == 6
    # The expert and the reviewer share the file: each warns once, naming it, and goes on uncached
    # (one failed write each, none tried again).
    warnings = [r.getMessage() for r in caplog.records if r.name == "teams_env.llm.service"]
    expected = f"LLM cache {cache} is not writable (database or disk is full); continuing uncached"
    assert warnings == [expected, expected]
    assert service.cache is None and env.engine.reviewer.service.cache is None
    assert writes == [1, 1]
    faults.record("disk full under the LLM cache", len(infos))


PIPELINE_PRESET = """
expert: "scripted?delay=0.05"
encoder: hashing
cache: none
seeds: bundled
train: {algo: trpo, total_timesteps: 96, n_envs: 8, reviewer_threshold: "0.5", checkpoint_freq: 48}
generate: {limit: 8, n_envs: 2, reviewer_threshold: "0.5"}
sft: {base: embedded, max_steps: 2, batch_size: 4, max_length: 96}
evaluate: {tasks: [teams_rl_general_knowledge], limit: 4, compare_base: false}
"""


def _kill_when(command: list[str], happened: Callable[[], bool], log: Path) -> None:
    """Start the pipeline and kill it as soon as ``happened()`` (polled every 20 ms): the kill
    follows an event inside a stage, not a timer, so a slower or faster machine kills in the same
    place. A run that ends before the event fails the test with its log."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600  # a safety net only
    try:
        while not happened():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the pipeline ended before the event:\n{log.read_text()[-3000:]}")
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(60)


def _lines(path: Path) -> int:
    """Complete lines in a file (0 when it does not exist yet)."""
    return path.read_text(encoding="utf-8").count("\n") if path.is_file() else 0


@pytest.mark.slow
def test_the_pipeline_killed_in_every_stage_finishes_on_rerun(tmp_path, faults):
    preset = tmp_path / "preset.yml"
    preset.write_text(PIPELINE_PRESET, encoding="utf-8")
    out = tmp_path / "run"
    command = [sys.executable, "-m", "teams_rl.cli", "pipeline", "--preset", str(preset), "--out", str(out)]
    events = {  # something each stage does early on, with more of the stage still to come
        "train": lambda: (out / "train" / "env_kwargs.json").is_file(),  # the run has started
        "generate": lambda: _lines(out / "data" / "progress.jsonl") >= 1,  # the first of 4 batches
        "sft": lambda: (out / "data" / "sft_train.jsonl").is_file(),  # split written, training next
        "evaluate": lambda: (out / "eval" / "privacy" / "privacy.json").is_file(),  # lm-eval next
    }
    killed = []
    for stage, happened in events.items():
        _kill_when(command, happened, tmp_path / f"{stage}.log")
        if not (out / ".stages" / f"{stage}.json").is_file():
            killed.append(stage)  # it really stopped inside the stage
    assert killed == list(events), killed
    final = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    assert all(
        (out / ".stages" / f"{stage}.json").is_file() for stage in ("train", "generate", "sft", "evaluate")
    )
    report = (out / "report.md").read_text()
    assert report.count("## ") >= 6
    assert "training episodes; mean return" in report and "Expert queries per kept item" in report
    records = check_complete(out / "data", 8)
    for stage in killed:
        faults.record(f"process killed during {stage}", records // len(killed))
