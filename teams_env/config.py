"""The environment's options as one configuration block, shared by every command that builds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from teams_env.configuration import option


@dataclass
class EnvConfig:
    expert: str = option(
        "llamacpp", "expert LLM backend: llamacpp[:GGUF], hf[:MODEL], openai:MODEL?base_url=URL, scripted"
    )
    reviewer: str = option("", "reviewer LLM backend (same forms); empty: the expert's")
    encoder: str = option(
        "default",
        "sentence encoder: default (all-MiniLM-L6-v2, embedded), a sentence-transformers name, or hashing[:DIM]",
    )
    seeds: str = option("bundled", "seed instructions: bundled, a JSON/JSONL file, or hf:DATASET[@split]")
    action_dim: int = option(5, "size of the continuous action vector (2 .. encoder size)")
    observation: str = option(
        "text", "observation: text (instruction embedding + action history) or last_action"
    )
    max_steps: int = option(6, "rewrites per episode")
    leak_penalty: float = option(0.0, "reward penalty when a rewrite leaks prompt words (rule 4)")
    review_method: str = option(
        "auto",
        "reviewer: auto (trained head if it fits the reviewer model, else likelihood, else generated "
        "verdict), head, likelihood, generate, embedding",
    )
    reviewer_head: str = option("bundled", "review head file (teams-rl train-reviewer), or bundled")
    reviewer_threshold: str = option(
        "auto", "P(Not Equal) from which a rewrite is rewarded, or auto (calibrated)"
    )
    max_new_tokens: int = option(256, "expert's token limit per rewrite")
    temperature: float = option(0.0, "expert's sampling temperature (0: greedy, reproducible)")
    on_failure: str = option(
        "keep", "after a failed rewrite go on from it (keep) or from the instruction before it (revert)"
    )
    cache: str = option(
        "auto", "LLM cache: auto ($TEAMS_RL_CACHE or ~/.cache/teams-rl), a file path, or none"
    )

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``TeaMsInstructEnv`` / ``gym.make``."""
        threshold: float | str = self.reviewer_threshold
        if threshold != "auto":
            try:
                threshold = float(threshold)
            except ValueError:
                raise ValueError(
                    f"reviewer_threshold must be 'auto' or a number, got '{threshold}'"
                ) from None
        return {
            "expert": self.expert,
            "reviewer": self.reviewer or None,
            "encoder": self.encoder,
            "seeds": self.seeds,
            "action_dim": self.action_dim,
            "observation": self.observation,
            "max_steps": self.max_steps,
            "leak_penalty": self.leak_penalty,
            "review_method": self.review_method,
            "reviewer_threshold": threshold,
            "reviewer_head": self.reviewer_head,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "on_failure": self.on_failure,
            "cache": self.cache,
        }
