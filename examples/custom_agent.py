"""A custom instructor: never repeat the previous rewrite. Anything with SB3's ``predict`` plugs in.

It reads the text-blind ``last_action`` observation (a one-hot of the previous action) and takes
the next action in order, so an episode uses all six rewrites once.

    python examples/custom_agent.py               # the embedded SmolLM2 expert and reviewer
    python examples/custom_agent.py --scripted    # a scripted stand-in LLM, in seconds
    teams-rl evaluate-policy --policy examples/custom_agent.py:RoundRobinAgent \
        --action-type discrete --observation last_action --limit 8
"""

import sys

import numpy as np

from teams_env.seeds import load_seeds
from teams_rl.agents import evaluate_agent


class RoundRobinAgent:
    def __init__(self, env: object = None, seed: int = 0) -> None:
        pass  # nothing to set up; load_agent calls Class(env, seed)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        last = np.atleast_2d(observation)
        following = (last.argmax(axis=1) + 1) % last.shape[1]
        actions = np.where(last.any(axis=1), following, 0)  # all zeros: the episode just began
        return (actions if np.ndim(observation) == 2 else actions[0]), state


if __name__ == "__main__":
    env_kwargs = {"action_type": "discrete", "observation": "last_action"}
    if "--scripted" in sys.argv:
        env_kwargs |= {"expert": "scripted", "encoder": "hashing", "cache": None}
    seeds = load_seeds().seeds[:8]
    for agent in (RoundRobinAgent(), "uniform"):
        print(evaluate_agent(agent, seeds, env_kwargs, n_envs=4).format_table(), "\n")
