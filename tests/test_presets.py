"""The shipped pipeline presets (quick, paper, vllm) load, and every stage's options in them build
and validate, without running anything: a typo in a preset fails here, not hours into a run."""

from __future__ import annotations

import importlib
import inspect

import pytest

from teams_env.llm.registry import _KINDS, parse_spec
from teams_rl.agents.commands import GenerateConfig, TrainConfig
from teams_rl.agents.training.algorithms import get_algorithm
from teams_rl.agents.training.hyperparameters import load_hyperparams
from teams_rl.finetune.commands import SFTConfig
from teams_rl.finetune.lm_eval_runner import parse_shots
from teams_rl.finetune.presets import apply_preset
from teams_rl.pipeline import Pipeline
from teams_rl.pipeline_config import PRESETS_DIR, PipelineConfig

SHIPPED = ("paper", "quick", "vllm")


def test_the_shipped_presets_are_these():
    assert tuple(sorted(path.stem for path in PRESETS_DIR.glob("*.yml"))) == SHIPPED


def _check_backend(spec: str) -> None:
    """The spec parses and its options are arguments of its backend class (nothing is loaded)."""
    parsed = parse_spec(spec)
    kind = _KINDS[parsed.kind]
    cls = getattr(importlib.import_module(kind.module), kind.cls)
    allowed = {
        name
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert set(parsed.options) <= allowed, (spec, sorted(set(parsed.options) - allowed))


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_preset_loads_and_every_stage_validates(name, tmp_path):
    pipeline = Pipeline(PipelineConfig(preset=name, out=str(tmp_path / name)))
    config = pipeline.config
    assert config.expert and config.seeds and config.stages == ["train", "generate", "sft", "evaluate"]
    for spec in (config.expert, config.reviewer or config.expert):
        _check_backend(spec)

    train = pipeline._stage_config(
        TrainConfig, "train", out=str(tmp_path), run_name="train", resume="", progress_bar=False
    )
    train.validate()
    load_hyperparams(get_algorithm(train.algo), train.hyperparams_file, train.hyperparams)

    generate = pipeline._stage_config(
        GenerateConfig, "generate", out=str(tmp_path / "data"), policy="uniform"
    )
    generate.validate()
    if generate.responder:
        _check_backend(generate.responder)

    sft = apply_preset(
        pipeline._stage_config(SFTConfig, "sft", data=str(tmp_path / "d.jsonl"), out=str(tmp_path / "m"))
    )
    sft.validate()

    evaluate = pipeline._evaluate_options()
    assert evaluate["tasks"]
    shots = parse_shots(list(evaluate["shots"]))
    assert set(shots) <= set(evaluate["tasks"])
