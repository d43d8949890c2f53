"""The environment from plain Gymnasium code: no agents package, no command line.

python examples/gymnasium_env.py              # the embedded SmolLM2 expert and reviewer
python examples/gymnasium_env.py --scripted   # a scripted stand-in LLM, in a second
"""

import sys

import gymnasium as gym

import teams_env  # noqa: F401  (registers TeaMsInstruct-v1 and TeaMsInstructDiscrete-v1)

scripted = {"expert": "scripted", "encoder": "hashing", "cache": None} if "--scripted" in sys.argv else {}
env = gym.make("TeaMsInstructDiscrete-v1", render_mode="ansi", **scripted)

obs, info = env.reset(seed=0, options={"instruction": "How to cook food"})
print(env.render())
episode_return, done = 0.0, False
while not done:
    action = env.action_space.sample()  # your policy here: an int in 0..5
    obs, reward, terminated, truncated, info = env.step(action)
    episode_return += reward
    print(env.render())
    done = terminated or truncated

print(f"return {episode_return} of {env.unwrapped.max_steps}; observation shape {obs.shape}")
print(env.unwrapped.ledger.format_table())  # what the models were asked, and what the cache answered
