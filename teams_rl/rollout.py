"""``teams-rl rollout``: watch the environment work. Random actions drive the real expert; each
rewrite and the reviewer's verdict are printed, then what the models were asked."""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym

from teams_env.env_config import EnvConfig
from teams_env.options import option


@dataclass
class RolloutConfig(EnvConfig):
    env_id: str = option("TeaMsInstruct-v0", "environment id (TeaMsInstruct-v0 or TeaMsInstructDiscrete-v0)")
    episodes: int = option(1, "episodes to run")
    seed: int = option(0, "seed of the first episode and of the random actions")
    instruction: str = option("", "start every episode from this instruction instead of a seed")

    def validate(self) -> None:
        super().validate()
        if self.episodes < 1:
            raise ValueError(f"episodes must be at least 1, got {self.episodes}")


def run(config: RolloutConfig) -> int:
    import teams_env  # noqa: F401  (registers the environments)

    start = time.perf_counter()
    env = gym.make(config.env_id, render_mode="ansi", **config.env_kwargs())
    env.action_space.seed(config.seed)
    total = 0.0
    for episode in range(config.episodes):
        options = {"instruction": config.instruction} if config.instruction else None
        env.reset(seed=config.seed + episode, options=options)
        print(env.render(), end="", flush=True)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            print(env.render(), end="", flush=True)
            done = terminated or truncated
    steps = config.episodes * config.max_steps
    print(
        f"\nmean reward per step: {total / steps:.2f} over {steps} steps, {time.perf_counter() - start:.1f} s"
    )
    print(env.unwrapped.ledger.format_table())
    env.close()
    return 0
