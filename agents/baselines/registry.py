"""Baseline instructors by name (SB3's ``predict`` interface, either environment):

- ``uniform``: each rewrite drawn uniformly from the six actions, Evol-Instruct's sampling.
- ``random-continuous``: a uniform sample of the Box action space, decoded to the nearest action
  prompt like any policy output (so the actions are *not* equally likely: each gets the share of
  the Box closest to its prototype). Continuous environment only.
- ``fixed:NAME,NAME,...``: the same sequence of actions every episode (step t takes NAME number
  t, cycling when the episode is longer than the list).
- ``reward-model``: greedy on a per-action model of the immediate reward from simple features of
  the instruction, fitted on the pack's train seeds (:mod:`teams_rl.agents.baselines.reward_model`).
  Replay env only.
- ``retry-aware:NAME,NAME,...``: a priority order that never retries an action that failed from
  the current instruction; it reads the verdicts, so the env must observe them. ``retry-aware``
  alone takes the actions from the most to the least often rewarded on the pack's train seeds
  (replay env only).
- ``reference``: the authors' generation pattern. Their code (``generate_data_alpaca.py``) forces
  breadth at steps 1 and 4 (counting from 0) and turns any other breadth into add-constraints,
  after biasing its policy towards add-constraints (+0.7 on that logit); as a baseline that is
  add_constraints, breadth, add_constraints, add_constraints, breadth, add_constraints.
- ``optimal`` and ``best-fixed``: the exact optimum of the replay env's pack and its best fixed
  action sequence, by dynamic programming (:mod:`teams_rl.agents.baselines.oracles`). Replay env only.
- ``supervised`` and ``nearest-seed``: what reading the instruction can buy, learnt from the
  pack's ``train`` seeds (:mod:`teams_rl.agents.baselines.text`): a softmax regression from the
  observation to the optimal action, and the optimal policy of the most similar training seed.
  Replay env only.
"""

from __future__ import annotations

import gymnasium as gym
from stable_baselines3.common.vec_env import VecEnv

from teams_rl.agents.baselines.oracles import BestFixedAgent, OptimalAgent
from teams_rl.agents.baselines.reward_model import RewardModelAgent, shared_rewarded_order, train_split_key
from teams_rl.agents.baselines.simple import (
    REFERENCE_SEQUENCE,
    BaselineAgent,
    FixedSequenceAgent,
    RandomContinuousAgent,
    RetryAwareAgent,
    UniformRandomAgent,
)
from teams_rl.agents.baselines.text import NearestSeedAgent, SupervisedAgent

BASELINE_NAMES = (
    "uniform",
    "random-continuous",
    "reference",
    "fixed:NAME,NAME,...",
    "retry-aware",
    "retry-aware:NAME,NAME,...",
    "optimal",
    "best-fixed",
    "supervised",
    "nearest-seed",
    "reward-model",
)
NAMED_BASELINES = tuple(name for name in BASELINE_NAMES if ":" not in name)


PARAMETERISED = ("fixed:", "retry-aware:")
"""Baselines named with a list of actions after the colon."""


def is_baseline(spec: str) -> bool:
    return spec in NAMED_BASELINES or spec.startswith(PARAMETERISED)


def make_baseline(spec: str, env: gym.Env | VecEnv, seed: int = 0) -> BaselineAgent | None:
    """The baseline a spec names (see the module docstring), or None if it names none."""
    if not is_baseline(spec):
        return None
    if spec == "uniform":
        return UniformRandomAgent(env, seed)
    if spec == "random-continuous":
        return RandomContinuousAgent(env, seed)
    if spec == "reference":
        return FixedSequenceAgent(env, REFERENCE_SEQUENCE, seed)
    if spec in ("optimal", "best-fixed"):
        return OptimalAgent(env, seed) if spec == "optimal" else BestFixedAgent(env, seed)
    if spec == "reward-model":
        return RewardModelAgent(env, seed)
    if spec == "retry-aware":
        return RetryAwareAgent(env, shared_rewarded_order(*train_split_key(env, spec)), seed)
    if spec in ("supervised", "nearest-seed"):
        return SupervisedAgent(env, seed) if spec == "supervised" else NearestSeedAgent(env, seed)
    kind, _, listed = spec.partition(":")
    names = [name.strip() for name in listed.split(",") if name.strip()]
    if kind == "retry-aware":
        return RetryAwareAgent(env, names, seed)
    return FixedSequenceAgent(env, names, seed)
