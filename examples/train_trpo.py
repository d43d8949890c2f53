"""Train the paper's instructor (sb3-contrib TRPO, continuous encoded actions) at a tiny budget,
then compare it with uniform random rewrites on held-out seeds.

    python examples/train_trpo.py               # the embedded SmolLM2 expert and reviewer (minutes)
    python examples/train_trpo.py --scripted    # a scripted stand-in LLM (seconds)

The same from the command line:

    teams-rl train --total-timesteps 96 --max-new-tokens 96
    teams-rl evaluate-policy --policy runs/<run> --offset 100 --limit 8 --max-new-tokens 96
"""

import sys

from teams_env.seeds import load_seeds
from teams_rl.agents import evaluate_agent
from teams_rl.agents.commands import TrainConfig
from teams_rl.agents.training.train import train

scripted = {"expert": "scripted", "encoder": "hashing", "cache": "none"} if "--scripted" in sys.argv else {}
config = TrainConfig(total_timesteps=96, n_envs=8, max_new_tokens=96, progress_bar=False, **scripted)
run_dir = train(config)

held_out = load_seeds().seeds[100:108]  # the policy trained on random draws from all seeds; see --seeds
for policy in (str(run_dir), "uniform"):
    result = evaluate_agent(policy, held_out, {**config.env_kwargs(), "action_type": "continuous"})
    print(result.format_table(), "\n")
