"""The environment's options as one typed dataclass: the only place their defaults live.

:class:`~teams_env.env.TeaMsInstructEnv` takes its keyword defaults from here, every command that
builds an env inherits these fields (so its flags and ``--config`` keys are the env's arguments, with
the same defaults), and :meth:`EnvConfig.env_kwargs` hands them over unchanged. Keep this module
light: the CLI imports it for every command.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from teams_env.options import option

RANDOM_SEEDS = re.compile(r"\d+(\s*,\s*\d+)*")
"""What a list of random seeds looks like (``0,1,2``): never a seed-instruction source."""


@dataclass
class EnvConfig:
    expert: str = option(
        "specialist",
        "expert LLM backend: specialist (the embedded model with the shipped rewrite adapter), llamacpp "
        "(the embedded model prompted with demonstrations) or llamacpp:GGUF, hf[:MODEL], "
        "openai:MODEL?base_url=URL, scripted",
    )
    reviewer: str | None = option(
        None,
        "reviewer LLM backend (same forms); not set: the expert's model (a specialist's without its adapter)",
    )
    encoder: str = option(
        "default",
        "sentence encoder: default (all-MiniLM-L6-v2, embedded), a sentence-transformers name, or hashing[:DIM]",
    )
    seeds: str = option("bundled", "seed instructions: bundled, a JSON/JSONL file, or hf:DATASET[@split]")
    action_dim: int = option(5, "size of the continuous action vector (2 .. encoder size)")
    observation: str = option(
        "text", "observation: text (instruction embedding + action history) or last_action"
    )
    observe_verdicts: bool = option(
        True,
        "the observation also says whether each past step was rewarded, and the instruction's length "
        "(the -v1 envs; off in -v0, the observation of runs trained before it)",
    )
    max_steps: int = option(6, "rewrites per episode")
    leak_penalty: float = option(0.0, "reward penalty when a rewrite leaks prompt words (rule 4)")
    review_method: str = option(
        "auto",
        "reviewer: auto (trained head if it fits the reviewer model, else likelihood, else generated "
        "verdict), head, likelihood, generate, embedding",
    )
    reviewer_head: str = option(
        "bundled",
        "review head: bundled, an earlier shipped head (pairs-v1), or a file from teams-rl train-reviewer",
    )
    reviewer_threshold: float | str = option(
        "auto", "P(Not Equal) from which a rewrite is rewarded, or auto (calibrated)"
    )
    max_new_tokens: int = option(256, "expert's token limit per rewrite")
    temperature: float = option(0.0, "expert's sampling temperature (0: greedy, reproducible)")
    on_failure: str = option(
        "revert",
        "after a failed rewrite go on from the instruction before it (revert: what packs, training, "
        "evaluation and generation all use) or from the failed rewrite (keep)",
    )
    cache: str = option(
        "auto", "LLM cache: auto ($TEAMS_RL_CACHE or ~/.cache/teams-rl), a file path, or none"
    )

    def validate(self) -> None:
        # Checked here as well as in the env, so a bad flag fails before any model loads.
        if RANDOM_SEEDS.fullmatch(self.seeds.strip()):
            raise ValueError(
                f"--seeds '{self.seeds}' looks like random seeds, but --seeds names the seed instructions "
                "(bundled, a JSON/JSONL file, or hf:DATASET); the random seed is --seed (bench: --run-seeds)"
            )
        if self.on_failure not in ("keep", "revert"):
            raise ValueError(f"--on-failure must be keep or revert, got '{self.on_failure}'")
        if isinstance(self.reviewer_threshold, str) and self.reviewer_threshold != "auto":
            raise ValueError(
                f"reviewer_threshold must be 'auto' or a number, got '{self.reviewer_threshold}'"
            )

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``TeaMsInstructEnv`` / ``gym.make``: every option above, as set."""
        return {item.name: getattr(self, item.name) for item in dataclasses.fields(EnvConfig)}


ENV_DEFAULTS = EnvConfig()
"""The defaults, for the env's signature and for commands that take a single env option."""


def env_option(name: str, help: str | None = None, *, deprecated: tuple[str, ...] = ()) -> Any:
    """A field of another config that is the env option ``name``: the env's default, and its help
    text unless ``help`` says more."""
    item = next(item for item in dataclasses.fields(EnvConfig) if item.name == name)
    return option(getattr(ENV_DEFAULTS, name), help or item.metadata["help"], deprecated=deprecated)


def deterministic_option() -> Any:
    """How every command that runs a policy picks its actions (one default: the policy that is
    evaluated is the policy that writes the dataset)."""
    return option(
        False,
        "take the policy's most likely action instead of sampling from it (SB3 models; the authors' "
        "code samples)",
    )
