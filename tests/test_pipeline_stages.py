"""The pipeline's stage markers are keyed by each stage's full resolved config: a changed option
re-runs that stage and the stages after it (and says so), ``--force`` on a stage invalidates the
stages after it, and the same options skip. The stages' work is replaced by stubs that record which
ran, so this runs in a second; the configs are the real, fully resolved ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from teams_rl import pipeline_report as report
from teams_rl.pipeline import STAGES, Pipeline
from teams_rl.pipeline_config import PipelineConfig

PRESET = """
expert: scripted
encoder: hashing
cache: none
train: {total_timesteps: 96}
sft: {base: embedded, max_steps: 2}
"""


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``run(**config) -> stages that ran``; each stub writes a file into its stage's output."""
    preset = tmp_path / "preset.yml"
    preset.write_text(PRESET, encoding="utf-8")
    ran: list[str] = []
    outputs = {"train": "train", "generate": "data", "sft": "model", "evaluate": "eval"}

    def stub(stage: str):
        def work(self: Pipeline) -> dict[str, Any]:
            ran.append(stage)
            (self.out / outputs[stage]).mkdir(exist_ok=True)
            (self.out / outputs[stage] / "made").write_text(str(len(ran)))
            return {"stage": stage}

        return work

    for stage in STAGES:
        monkeypatch.setattr(Pipeline, stage, stub(stage))
    monkeypatch.setattr(report, "write_report", lambda out, *args: out / "report.md")

    def go(**options: Any) -> list[str]:
        ran.clear()
        Pipeline(PipelineConfig(preset=str(preset), out=str(tmp_path / "run"), **options)).run()
        return list(ran)

    return go


def test_the_same_options_skip_every_stage(run, capsys):
    assert run() == list(STAGES)
    capsys.readouterr()
    assert run() == []
    assert capsys.readouterr().out.count("with the same options; skipped") == 4


def test_a_changed_sft_option_reruns_sft_and_evaluate_but_not_train(run, tmp_path, capsys):
    run()
    made = (tmp_path / "run" / "train" / "made").read_text()
    capsys.readouterr()

    assert run(sft={"max_steps": 3}) == ["sft", "evaluate"]
    lines = [line for line in capsys.readouterr().out.splitlines() if "again" in line]
    assert lines == [
        "pipeline: sft: options changed (max_steps: 2 -> 3); running sft and evaluate again from scratch"
    ]
    assert (tmp_path / "run" / "train" / "made").read_text() == made  # train's output untouched
    assert run(sft={"max_steps": 3}) == []


def test_a_changed_train_option_reruns_everything_from_scratch(run, tmp_path):
    run()
    (tmp_path / "run" / "train" / "stale").write_text("from the old run")
    assert run(train={"total_timesteps": 48}) == list(STAGES)
    assert not (tmp_path / "run" / "train" / "stale").exists()  # train restarted, not resumed


def test_force_on_a_stage_invalidates_the_stages_after_it(run, capsys):
    run()
    capsys.readouterr()
    assert run(stages=["generate"], force=True) == ["generate"]
    assert "running generate and sft, evaluate again from scratch" in capsys.readouterr().out
    assert run() == ["sft", "evaluate"]  # train is still valid; what came after generate is not
    assert run() == []


def test_an_interrupted_stage_with_the_same_options_resumes_and_with_others_restarts(run, tmp_path):
    stages = tmp_path / "run" / ".stages"
    run(stages=["train", "generate"])
    # Make generate look killed mid-way: no marker, its started-file with its fingerprint, a journal.
    fingerprint = json.loads((stages / "generate.json").read_text())["fingerprint"]
    (stages / "generate.json").unlink()
    (stages / "generate.started.json").write_text(json.dumps({"fingerprint": fingerprint}))
    (tmp_path / "run" / "data" / "journal").write_text("half")
    assert run(stages=["generate"]) == ["generate"]
    assert (tmp_path / "run" / "data" / "journal").is_file()  # resumed: its journal kept

    (stages / "generate.json").unlink()
    (stages / "generate.started.json").write_text(json.dumps({"fingerprint": fingerprint}))
    assert run(stages=["generate"], generate={"limit": 4}) == ["generate"]
    assert not (tmp_path / "run" / "data" / "journal").exists()  # other options: started afresh


def test_a_marker_from_before_fingerprints_reruns(run, tmp_path, capsys):
    run()
    (tmp_path / "run" / ".stages" / "evaluate.json").write_text('{"seconds": 1.0}')
    capsys.readouterr()
    assert run() == ["evaluate"]
    assert "evaluate: its marker predates config fingerprints" in capsys.readouterr().out


def test_the_report_compares_diversity_at_one_size_and_labels_raw_vendi_with_n(tmp_path):
    from teams_env.encoder import shared_encoder
    from teams_env.metrics import compared_diversity

    sets = {
        "seeds": ["Explain tides.", "Name a fruit.", "Plan a trip."],
        "dataset": ["Explain tides to a child.", "Name a red fruit.", "Plan a trip to Rome.", "Sum 2 and 3."],
    }
    diversity = compared_diversity(sets, shared_encoder("hashing").encode, resamples=20)
    timings = {"sft": {"seconds": 1.0, "skipped": False, "reason": "options changed (max_steps: 2 -> 3)"}}
    path = report.write_report(
        tmp_path, PipelineConfig(), {"evaluate": {"diversity": diversity, "encoder": "hashing"}}, timings, 1.0
    )
    text = path.read_text()
    assert "compared on random subsets of 3 items each" in text and "(3 and 4 items)" in text
    assert "| Vendi score on 3 random items: mean [95% interval over 20 subsets] |" in text
    assert f"{diversity['dataset']['vendi_score']:.3f} (n=4) |" in text
    assert "| sft | ran again (options changed (max_steps: 2 -> 3)) | 1 |" in text
