"""The learning loop is wired right: with a scripted reviewer that rewards action diversity, TRPO
learns to beat uniform random rewrites, whatever the quality of a real LLM.

The scripted expert appends an action-specific clause to the instruction (ACTION_CLAUSES), so the
review conversation shows which action was just applied (the clause that ends the new text) and
which were applied before (the clauses already in the old text). The reviewer says "Not Equal"
exactly when the action is new in the trajectory. Uniform random then earns
sum_{k=0..5} (5/6)^k = 3.99 per 6-step episode (step k repeats one of the actions before it with
probability 1 - (5/6)^k); the best policy uses six different actions and earns 6.

Measured on the development machine (TRPO, continuous encoded actions, text observation with the
hashing encoder, 12,288 steps of 8 sub-environments on 72 seeds, 10-20 s): seeds 0, 1 and 2 all
reached 6.00 on the 48 other seeds, against 3.96 for uniform random.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from teams_env.llm.base import Conversation
from teams_env.llm.scripted import ACTION_CLAUSES, ScriptedBackend
from teams_env.reward.reviewer import EQUAL, NOT_EQUAL, parse_review_conversation
from teams_env.seeds import load_seeds
from teams_rl.agents.commands import TrainConfig
from teams_rl.agents.evaluation import evaluate_agent
from teams_rl.agents.training.train import train

UNIFORM_EXPECTED_RETURN = sum((5 / 6) ** k for k in range(6))


def diversity_score(conversation: Conversation, choices: Sequence[str]) -> list[float]:
    """Log-likelihoods (0.9 vs 0.1) favouring Not Equal when the rewrite's action is new."""
    pair = parse_review_conversation(conversation)
    assert pair is not None, "the diversity reviewer only answers review conversations"
    before, after = pair
    clause = max(ACTION_CLAUSES.values(), key=after.rfind)  # the action applied last
    preferred = EQUAL if clause in before else NOT_EQUAL
    return [math.log(0.9) if choice == preferred else math.log(0.1) for choice in choices]


def test_trpo_learns_to_beat_uniform_random_on_a_diversity_reviewer(tmp_path: Path) -> None:
    seeds = load_seeds().seeds
    training_seeds, held_out = seeds[:72], seeds[72:]
    # A fixed threshold: the anchor pairs of "auto" calibration are not rewrites this reviewer knows.
    # "revert": a repeated clause is not kept, so no text piles up repeats until the validity rules
    # call it a loop; the reward stays "a clause new in the episode" and uniform still earns 3.99.
    env_kwargs = {
        "expert": ScriptedBackend(score=diversity_score),
        "encoder": "hashing",
        "cache": None,
        "reviewer_threshold": 0.5,
        "on_failure": "revert",
    }
    config = TrainConfig(
        encoder="hashing",
        on_failure="revert",
        total_timesteps=12_288,
        n_envs=8,
        seed=0,
        hyperparams={"n_steps": 12, "batch_size": 48, "target_kl": 0.1},
        out=str(tmp_path),
        checkpoint_freq=100_000,
        progress_bar=False,
    )
    run_dir = train(config, env_overrides={**env_kwargs, "seeds": [seed.text for seed in training_seeds]})

    trained = evaluate_agent(str(run_dir), held_out, env_kwargs, deterministic=True)
    uniform = evaluate_agent("uniform", held_out, env_kwargs, seed=0)

    # 48 episodes: the standard error of uniform's mean return is about 0.12.
    assert abs(uniform.mean_return - UNIFORM_EXPECTED_RETURN) < 0.5
    assert trained.mean_return > uniform.mean_return + 1.0, (trained.mean_return, uniform.mean_return)
    assert trained.mean_return >= 5.0
    assert trained.not_equal_rate > uniform.not_equal_rate
