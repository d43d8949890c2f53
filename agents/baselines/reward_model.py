"""``reward-model``: a greedy policy on a per-action model of the immediate reward, from a few
simple features of the current instruction, fitted on a pack's ``train`` seeds.

What predicts a rewrite's reward on the shipped pack is mostly the instruction itself (its length
above all: the embedded expert copies long instructions and returns nothing for them), so a model
of ``P(rewarded | instruction, action)`` on cheap features is a baseline any learner reading the
text should beat. The features (:data:`FEATURES`), each in [0, 1]:

- ``words``: the number of words, / 200, at most 1 (the verdict observation's length);
- ``depth``: the steps taken so far / the episode's length;
- ``code``, ``table``, ``json``: whether the instruction carries a code block, a Markdown table,
  JSON;
- ``question``: whether it asks a question (ends with "?" or starts with a question word);
- ``input``: whether data follows the instruction (a blank line, then more text);
- ``list``: whether it holds a numbered or bulleted list.

Per action, a logistic regression (two-class softmax regression, standardized features, an L2
penalty chosen by 4-fold cross-validation over the training seeds on held-out log-loss) is fitted
on every node of the training seeds' trees. At each step the policy takes the action with the
highest predicted reward, skipping the actions that failed from the current instruction when the
env observes verdicts (``observe_verdicts=True``; otherwise it cannot know, and may retry). It
reads the current instruction's text from the replay env, as the text baselines read the pack.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from teams_env.actions import ACTION_NAMES
from teams_env.base_env import instruction_length
from teams_env.replay.env import TeaMsInstructReplayEnv
from teams_rl.agents.baselines.oracles import replay_env
from teams_rl.agents.baselines.simple import BaselineAgent, VerdictReader
from teams_rl.agents.baselines.text import (
    CV_FOLDS,
    L2_GRID,
    TRAIN_SPLIT,
    SoftmaxPolicy,
    fit_softmax_regression,
)

FEATURES = ("words", "depth", "code", "table", "json", "question", "input", "list")
QUESTION_WORDS = ("what", "why", "how", "which", "who", "when", "where", "can", "is", "are", "does", "do")


def instruction_features(text: str, depth: float) -> np.ndarray:
    """The :data:`FEATURES` of an instruction at ``depth`` (steps taken / episode length)."""
    stripped = text.strip()
    first = stripped.split(maxsplit=1)[0].lower() if stripped else ""
    return np.array(
        [
            instruction_length(stripped),
            depth,
            "```" in stripped or bool(re.search(r"^\s*(def |class |import |for |if .*:)", stripped, re.M)),
            bool(re.search(r"^\s*\|.*\|", stripped, re.M)),
            bool(re.search(r"[{\[]\s*\"[^\"]+\"\s*:", stripped)),
            stripped.endswith("?") or first in QUESTION_WORDS,
            "\n\n" in stripped,
            bool(re.search(r"^\s*(\d+[.)]|[-*•])\s+\S", stripped, re.M)),
        ],
        dtype=np.float64,
    )


@dataclass(frozen=True, eq=False)
class RewardModel:
    """Per action, the probability that its rewrite of an instruction is rewarded."""

    policies: tuple[SoftmaxPolicy, ...]

    def scores(self, features: np.ndarray) -> np.ndarray:
        return np.array([policy.probabilities(features)[0, 1] for policy in self.policies])


def _rows(env: TeaMsInstructReplayEnv) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (node, action) of ``env``'s seeds before the horizon: features, action, label, seed index."""
    features, actions, labels, seeds = [], [], [], []
    for number, seed_id in enumerate(env.seed_ids):
        stack: list[tuple[int, ...]] = [()]
        while stack:
            path = stack.pop()
            state = env.pack.node(seed_id, path).state
            row = instruction_features(state, len(path) / env.max_steps)
            for action in range(len(ACTION_NAMES)):
                child = (*path, action)
                features.append(row)
                actions.append(action)
                labels.append(env.transition_reward(seed_id, child) > 0)
                seeds.append(number)
                if len(child) < env.max_steps:
                    stack.append(child)
    return np.array(features), np.array(actions), np.array(labels, dtype=np.float64), np.array(seeds)


def _fit(features: np.ndarray, labels: np.ndarray, l2: float) -> SoftmaxPolicy:
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    targets = np.column_stack([1 - labels, labels])
    weights, bias = fit_softmax_regression((features - mean) / scale, targets, np.ones(len(labels)), l2)
    return SoftmaxPolicy(mean, scale, weights, bias, l2)


def _log_loss(policy: SoftmaxPolicy, features: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(policy.probabilities(features)[:, 1], 1e-9, 1 - 1e-9)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def fit_reward_model(env: TeaMsInstructReplayEnv, grid: Sequence[float] = L2_GRID) -> RewardModel:
    """Fit on ``env``'s seeds (give it the train split): per action, the L2 strength of ``grid``
    with the lowest cross-validated log-loss over folds of seeds, then a fit on all of them."""
    features, actions, labels, seeds = _rows(env)
    folds = seeds % CV_FOLDS
    policies = []
    for action in range(len(ACTION_NAMES)):
        mine = actions == action
        x, y, fold = features[mine], labels[mine], folds[mine]

        def held_out_loss(l2: float, x: np.ndarray = x, y: np.ndarray = y, fold: np.ndarray = fold) -> float:
            losses = [
                _log_loss(_fit(x[fold != k], y[fold != k], l2), x[fold == k], y[fold == k])
                for k in range(CV_FOLDS)
                if (fold == k).any() and len(np.unique(y[fold != k])) == 2
            ]
            return float(np.mean(losses)) if losses else 0.0

        best = min(grid, key=held_out_loss)
        policies.append(_fit(x, y, best))
    return RewardModel(tuple(policies))


@functools.cache
def _shared_fit(pack_directory: str, content: str, max_steps: int, reward: str) -> RewardModel:
    del content  # part of the key: another recording of the same directory is another fit
    return fit_reward_model(_train_split(pack_directory, max_steps, reward))


def rewarded_order(env: TeaMsInstructReplayEnv) -> list[str]:
    """The actions from the most to the least often rewarded over every node of ``env``'s seeds
    (give it the train split): the priority order of ``retry-aware`` when none is named, the
    feature-free reward model."""
    _, actions, labels, _ = _rows(env)
    shares = [labels[actions == action].mean() for action in range(len(ACTION_NAMES))]
    return [ACTION_NAMES[action] for action in np.argsort(-np.array(shares), kind="stable")]


def _train_split(pack_directory: str, max_steps: int, reward: str) -> TeaMsInstructReplayEnv:
    return TeaMsInstructReplayEnv(
        pack=pack_directory,
        seeds=TRAIN_SPLIT,
        action_type="discrete",
        observation="last_action",
        max_steps=max_steps,
        reward=reward,
    )


@functools.cache
def shared_rewarded_order(pack_directory: str, content: str, max_steps: int, reward: str) -> list[str]:
    del content  # part of the key: another recording of the same directory is another order
    return rewarded_order(_train_split(pack_directory, max_steps, reward))


class TrainSplitKey(NamedTuple):
    """What a fit on the train seeds of a pack depends on."""

    pack_directory: str
    content: str
    max_steps: int
    reward: str


def train_split_key(env: gym.Env | VecEnv, agent: str) -> TrainSplitKey:
    """The :class:`TrainSplitKey` of ``env``'s pack, horizon and reward."""
    replay = replay_env(env, agent)
    return TrainSplitKey(
        str(replay.pack.directory),
        str(replay.pack.manifest.get("content_sha256")),
        replay.max_steps,
        replay.reward_name,
    )


class RewardModelAgent(BaselineAgent):
    """Greedy on the fitted reward model; with verdicts observed, it skips what failed (as
    :class:`~teams_rl.agents.baselines.simple.RetryAwareAgent` does, with the model's ranking as
    the priority order)."""

    def __init__(self, env: gym.Env | VecEnv, seed: int = 0) -> None:
        super().__init__(env, seed)
        self.env = env
        key = train_split_key(env, "reward-model")
        self.max_steps = key.max_steps
        self.model = _shared_fit(*key)
        self.verdicts = VerdictReader.of(env)

    def _actions_for(self, steps: np.ndarray, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        texts = (
            self.env.get_attr("instruction")
            if isinstance(self.env, VecEnv)
            else [self.env.unwrapped.instruction]
        )
        chosen = []
        for text, step, observation in zip(texts, steps, observations):
            order = np.argsort(
                -self.model.scores(instruction_features(text, step / self.max_steps)), kind="stable"
            )
            failed = self.verdicts.failed(observation) if self.verdicts is not None else set()
            chosen.append(next((int(a) for a in order if int(a) not in failed), int(order[0])))
        return self._from_indices(np.array(chosen))
