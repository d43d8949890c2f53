"""Benchmarks of RL algorithms on instruction diversity: on the live env, and on a recorded pack
against its exact ceilings (rliable statistics, reports, plots, what the reward pays for)."""
