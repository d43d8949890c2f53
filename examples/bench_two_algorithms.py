"""Benchmark two RL algorithms on instruction diversity: TRPO (the paper's) against PPO, with
uniform random rewrites as the floor, over two seeds.

    python examples/bench_two_algorithms.py             # the embedded models (minutes to an hour)
    python examples/bench_two_algorithms.py --scripted  # a scripted stand-in LLM (seconds)

Rewrites are capped at 96 new tokens, as in train_trpo.py: a rewrite of a short instruction needs
far fewer, and the rare one that runs on to the cap costs a query's worth of decoding, not more.
The same from the command line:

    teams-rl bench --algos trpo,ppo,uniform --run-seeds 0,1 --budget 96 --max-new-tokens 96 --out bench
"""

import sys

from teams_rl.agents.benchmark.live import bench
from teams_rl.agents.commands import BenchConfig

scripted = {"expert": "scripted", "encoder": "hashing", "cache": "none"} if "--scripted" in sys.argv else {}
config = BenchConfig(
    algos=["trpo", "ppo", "uniform"],
    variants=[],
    run_seeds=[0, 1],
    budget=96,
    eval_limit=8,
    max_new_tokens=96,
    out="bench",
    **scripted,
)
out = bench(config)
print((out / "benchmark.md").read_text(encoding="utf-8").split("### ")[1])  # the reward table
print("plots:", ", ".join(sorted(p.name for p in out.glob("*.png"))))
