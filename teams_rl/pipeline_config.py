"""Options of ``teams-rl pipeline`` (light: the CLI imports this for every command).

A preset (``quick``, ``paper``, ``vllm`` or a YAML file) gives the base values; ``--config`` and
flags override them. Each stage has its own mapping of options (the keys of ``teams-rl train``,
``generate``, ``sft``; ``evaluate`` keys are listed on :class:`PipelineConfig`), merged key by key
over the preset's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teams_env.options import option

PRESETS_DIR = Path(__file__).with_name("presets")
STAGES = ("train", "generate", "sft", "evaluate")
SHARED_KEYS = ("expert", "reviewer", "encoder", "cache", "seeds")
"""Options given once at the top and passed to every stage that takes them."""


@dataclass
class PipelineConfig:
    preset: str = option("quick", "base values: quick (embedded model, CPU), paper, vllm, or a YAML file")
    out: str | None = option(
        None,
        "run directory; a stage complete in it with the same options is skipped (not set: pipelines/PRESET)",
    )
    seed: int = option(0, "seed of every stage")
    stages: list[str] = option(list(STAGES), "stages to run, in order: train, generate, sft, evaluate")
    force: bool = option(
        False,
        "run the named stages again from scratch even when complete; the stages after them run again too",
    )
    expert: str | None = option(None, "expert LLM backend for every stage (not set: the preset's)")
    reviewer: str | None = option(None, "reviewer LLM backend (not set: the preset's, else the expert's)")
    encoder: str | None = option(None, "sentence encoder (not set: the preset's)")
    cache: str | None = option(None, "LLM cache (not set: the preset's)")
    seeds: str | None = option(None, "seed instructions (not set: the preset's)")
    train: dict[str, Any] = option({}, "options of `teams-rl train` (KEY=VALUE,... or a YAML mapping)")
    generate: dict[str, Any] = option({}, "options of `teams-rl generate`")
    sft: dict[str, Any] = option({}, "options of `teams-rl sft` (base, method, epochs, ...)")
    evaluate: dict[str, Any] = option(
        {},
        "evaluation: holdout (share of the data kept out of SFT as privacy non-members), tasks and shots "
        "(lm-eval), limit, compare_base (also evaluate the base model)",
    )

    def validate(self) -> None:
        unknown = [stage for stage in self.stages if stage not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage '{unknown[0]}'; stages are {', '.join(STAGES)}")
