"""``teams-rl evaluate-policy``: roll an agent over held-out seed instructions, one episode per
seed, and report its mean episodic return, the reviewer's Not-Equal rate and how often it picked
each action, overall and per step of the episode.

Episodes run side by side in the batched vector environment (:func:`teams_rl.agents.episodes.rollout`). A
trained run is evaluated with its own spaces (encoder, action type and size, observation, episode
length from its ``env_kwargs.json``) and the models, seeds and cache given here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from teams_env.actions import ACTION_NAMES
from teams_env.llm.accounting import QueryLedger
from teams_env.reward.reviewer import NOT_EQUAL
from teams_env.seeds import SeedInstruction, load_seeds
from teams_rl.agents.commands import EvaluatePolicyConfig
from teams_rl.agents.episodes import DYNAMICS_KEYS, Trajectory, dynamics_line, env_kwargs_for, rollout
from teams_rl.agents.policy import Agent, check_agent_spec

REVIEW_METHODS = ("likelihood", "generate")
"""The ``review_method`` of steps the reviewer judged (see ``Judgement.method``)."""


@dataclass
class Episode:
    seed_id: str
    actions: list[str] = field(default_factory=list)
    not_equal: list[bool] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    reviewed: list[bool] = field(default_factory=list)
    """Whether the reviewer judged the step (a failed rewrite is Equal without asking it)."""

    @property
    def total_reward(self) -> float:
        return float(sum(self.rewards))


def _frequencies(names: Sequence[str]) -> dict[str, float]:
    counts = Counter(names)
    return {name: counts[name] / max(1, len(names)) for name in ACTION_NAMES}


@dataclass
class EvaluationResult:
    policy: str
    episodes: list[Episode]
    queries: dict[str, dict[str, float]]
    """The ledger of the evaluation (``QueryLedger.as_dict()``)."""

    @property
    def returns(self) -> np.ndarray:
        return np.array([episode.total_reward for episode in self.episodes])

    @property
    def mean_return(self) -> float:
        return float(self.returns.mean())

    @property
    def not_equal_rate(self) -> float:
        return float(np.mean([v for episode in self.episodes for v in episode.not_equal]))

    @property
    def action_frequencies(self) -> dict[str, float]:
        return _frequencies([name for episode in self.episodes for name in episode.actions])

    def per_step(self) -> list[dict[str, Any]]:
        steps = len(self.episodes[0].actions)
        return [
            {
                "step": step + 1,
                "not_equal_rate": float(np.mean([episode.not_equal[step] for episode in self.episodes])),
                "action_frequencies": _frequencies([episode.actions[step] for episode in self.episodes]),
            }
            for step in range(steps)
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "episodes": len(self.episodes),
            "mean_return": self.mean_return,
            "std_return": float(self.returns.std()),
            "mean_step_reward": self.mean_return / len(self.episodes[0].actions),
            "not_equal_rate": self.not_equal_rate,
            "reviewer_verdicts": sum(sum(episode.reviewed) for episode in self.episodes),
            "action_frequencies": self.action_frequencies,
            "per_step": self.per_step(),
            "queries": self.queries,
            "per_episode": [
                {
                    "seed_id": e.seed_id,
                    "return": e.total_reward,
                    "actions": e.actions,
                    "not_equal": e.not_equal,
                }
                for e in self.episodes
            ],
        }

    def format_table(self) -> str:
        header = f"{'step':<5} {'Not-Equal':>9} " + " ".join(f"{name:>{len(name)}}" for name in ACTION_NAMES)

        def row(label: str, rate: float, frequencies: Mapping[str, float]) -> str:
            return f"{label:<5} {rate:>9.2f} " + " ".join(
                f"{frequencies[name]:>{len(name)}.2f}" for name in ACTION_NAMES
            )

        lines = [
            f"{self.policy}: {len(self.episodes)} episodes, mean return {self.mean_return:.2f} "
            f"± {self.returns.std():.2f} (of {len(self.episodes[0].actions)}), "
            f"Not-Equal rate {self.not_equal_rate:.2f}",
            "action frequencies and Not-Equal rate per step:",
            header,
            "-" * len(header),
        ]
        lines += [row(str(s["step"]), s["not_equal_rate"], s["action_frequencies"]) for s in self.per_step()]
        lines.append(row("all", self.not_equal_rate, self.action_frequencies))
        expert, reviewer = self.queries.get("expert", {}), self.queries.get("reviewer", {})
        lines.append(
            f"queries: expert {expert.get('queries', 0):.0f} (+{expert.get('cache_hits', 0):.0f} cached), "
            f"reviewer {reviewer.get('queries', 0):.0f} (+{reviewer.get('cache_hits', 0):.0f} cached)"
        )
        return "\n".join(lines)


def _episode(trajectory: Trajectory) -> Episode:
    return Episode(
        trajectory.seed.id,
        [info["action_name"] for info in trajectory.infos],
        [info["verdict"] == NOT_EQUAL for info in trajectory.infos],
        list(trajectory.rewards),
        [info["review_method"] in REVIEW_METHODS for info in trajectory.infos],
    )


def evaluate_agent(
    agent: Agent | str,
    instructions: Sequence[SeedInstruction | str],
    env_kwargs: Mapping[str, Any],
    *,
    n_envs: int = 8,
    deterministic: bool = True,
    seed: int = 0,
    ledger: QueryLedger | None = None,
) -> EvaluationResult:
    """One episode of ``agent`` from each instruction. ``agent`` is an agent object or a spec for
    :func:`~teams_rl.agents.policy.load_agent` (a run then brings its own spaces)."""
    ledger = ledger if ledger is not None else QueryLedger()
    batches = rollout(
        agent, instructions, env_kwargs, n_envs=n_envs, deterministic=deterministic, seed=seed, ledger=ledger
    )
    episodes = [_episode(trajectory) for batch in batches for trajectory in batch]
    name = agent if isinstance(agent, str) else type(agent).__name__
    return EvaluationResult(name, episodes, ledger.as_dict())


def run(config: EvaluatePolicyConfig) -> int:
    check_agent_spec(config.policy)
    seeds = load_seeds(config.seeds, skip_bad_lines=config.skip_bad_lines).seeds[config.offset :]
    if config.limit:
        seeds = seeds[: config.limit]
    if not seeds:
        raise ValueError(f"--seeds {config.seeds}: no seed instructions left after --offset {config.offset}")
    env_kwargs = env_kwargs_for(config.policy, {**config.env_kwargs(), "action_type": config.action_type})
    print(f"{dynamics_line(config.policy, env_kwargs)}, deterministic={config.deterministic}")
    result = evaluate_agent(
        config.policy,
        seeds,
        env_kwargs | {"seeds": [seed.text for seed in seeds]},  # as loaded: the env reads no file again
        n_envs=config.n_envs,
        deterministic=config.deterministic,
        seed=config.seed,
    )
    print(result.format_table())
    if config.output:
        output = Path(config.output).expanduser()
        output.parent.mkdir(parents=True, exist_ok=True)
        report = result.as_dict() | {
            "settings": {key: env_kwargs[key] for key in DYNAMICS_KEYS}
            | {"deterministic": config.deterministic}
        }
        output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"report written to {output}")
    return 0
