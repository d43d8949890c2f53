"""Two baselines that bound what reading the instruction can buy on a recorded pack.

Both learn from the pack's ``train`` seeds only, with the optimum of :mod:`teams_env.replay.optimum` as
the teacher, and act on any seeds of the same pack (held-out ones included):

- ``supervised``: a softmax regression (multinomial logistic regression) from the replay env's
  observation (for ``observation="text"``: the current instruction's embedding, the one-hot
  actions so far, the fraction of steps done) to the optimal action. Its training set is every
  node before the horizon of every training seed's tree, on optimal and non-optimal paths alike;
  a node's target is the uniform distribution over its optimal actions (all actions whose
  ``Q(node, a) = r(node + a) + V(node + a)`` equals the node's optimal value ``V(node)``), so ties
  are not broken by action index. Each depth weighs the same (a node of depth ``d`` has weight
  ``6^-d``), so the first decision counts as much as all the last ones together. Features are
  standardized on the training set; the fit is L-BFGS with an L2 penalty whose strength is chosen
  by 4-fold cross-validation over the training seeds (the greedy policy's mean return on the
  left-out seeds), so the held-out seeds choose nothing. It is deterministic and needs no seed
  (the run seed only drives sampling when ``deterministic=False``); a process fits it once per
  pack, split, observation and reward.
- ``nearest-seed``: at each step it looks up the seed its episode started from, finds the
  training seed whose text embedding (the pack's ``embeddings.npz``, by the pack's encoder) is
  the most cosine-similar, and plays that training seed's optimal policy along its own action
  path: ``best_action[(nearest training seed, actions so far)]``. Following its own history, that
  is the nearest training seed's optimal action sequence, open loop. On a training seed the
  nearest seed is the seed itself, so there it is the optimum.

Neither reads more than the seed text (nearest-seed) or the observation (supervised); the
nearest-seed agent reads the env's ``node_key`` to know which seed it started from and its own
actions, as the optimal oracle does. Both need :class:`~teams_env.replay.env.TeaMsInstructReplayEnv`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import scipy.optimize
from stable_baselines3.common.vec_env import VecEnv

from teams_env.actions import ACTION_NAMES
from teams_env.replay.env import TeaMsInstructReplayEnv
from teams_env.replay.optimum import Optimum
from teams_rl.agents.baselines.oracles import env_node_keys, env_optimum, replay_env
from teams_rl.agents.baselines.simple import BaselineAgent

TRAIN_SPLIT = "train"
L2_GRID = (10.0, 1.0, 0.1, 0.01)
"""The weights of ``||W||^2 / 2`` (biases excluded) against the weighted mean cross-entropy that
cross-validation over the training seeds chooses among."""
CV_FOLDS = 4
MAX_ITERATIONS = 1000
TIE_TOLERANCE = 1e-9
"""Actions whose value is within this of the best are all optimal (returns are sums of floats)."""


def training_env(env: TeaMsInstructReplayEnv, split: str = TRAIN_SPLIT) -> TeaMsInstructReplayEnv:
    """A discrete replay env over ``split`` of ``env``'s pack, with ``env``'s horizon, observation
    (verdicts included or not), encoder and reward."""
    reward: dict[str, Any] = (
        {"reward_fn": env.reward_fn} if env.reward_name == "custom" else {"reward": env.reward_name}
    )
    return TeaMsInstructReplayEnv(
        pack=env.pack,
        seeds=split,
        action_type="discrete",
        observation=env.observation_mode,
        observe_verdicts=env.observe_verdicts,
        max_steps=env.max_steps,
        encoder=env.encoder,
        **reward,
    )


def optimal_targets(
    env: TeaMsInstructReplayEnv, optimum: Optimum
) -> dict[tuple[str, tuple[int, ...]], np.ndarray]:
    """Every node before the horizon of ``env``'s seeds -> the uniform distribution over its
    optimal actions (the teacher of the supervised baseline)."""
    n_actions = len(ACTION_NAMES)
    targets = {}
    for (seed_id, path), value in optimum.values.items():
        q = np.empty(n_actions)
        for action in range(n_actions):
            child = (*path, action)
            later = optimum.values.get((seed_id, child), 0.0)  # 0 at the horizon
            q[action] = env.transition_reward(seed_id, child) + optimum.gamma * later
        best = q >= value - TIE_TOLERANCE
        targets[(seed_id, path)] = best / best.sum()
    return targets


def node_observation(env: TeaMsInstructReplayEnv, seed_id: str, path: tuple[int, ...]) -> np.ndarray:
    """The observation ``env`` gives at node ``(seed_id, path)`` (reset, then the path's actions)."""
    observation, _ = env.reset(options={"seed_id": seed_id})
    for action in path:
        observation, *_ = env.step(action)
    return np.asarray(observation, dtype=np.float64)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def fit_softmax_regression(
    features: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    l2: float,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``W`` (features x classes) and biases ``b`` minimising the ``weights``-weighted mean
    cross-entropy of ``softmax(x W + b)`` against the soft ``targets``, plus ``l2 * ||W||^2 / 2``.
    Convex, solved by L-BFGS from zeros (or from ``start``, a neighbouring solution): the same
    data always give the same answer."""
    d = features.shape[1]
    k = targets.shape[1]
    share = weights / weights.sum()

    def loss_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = flat[: d * k].reshape(d, k), flat[d * k :]
        logits = features @ w + b
        log_p = logits - logits.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        loss = -float(share @ (targets * log_p).sum(axis=1)) + 0.5 * l2 * float((w * w).sum())
        error = share[:, None] * (np.exp(log_p) - targets)
        gradient = np.concatenate([(features.T @ error + l2 * w).ravel(), error.sum(axis=0)])
        return loss, gradient

    result = scipy.optimize.minimize(
        loss_and_gradient,
        np.zeros(d * k + k) if start is None else np.concatenate([start[0].ravel(), start[1]]),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": MAX_ITERATIONS},
    )
    return result.x[: d * k].reshape(d, k), result.x[d * k :]


@dataclass(frozen=True, eq=False)
class SoftmaxPolicy:
    """``softmax(((x - mean) / scale) W + b)``: standardized features, then a linear layer."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    l2: float

    def probabilities(self, observation: np.ndarray) -> np.ndarray:
        """The action distribution for each row of ``observation``."""
        rows = np.atleast_2d(np.asarray(observation, dtype=np.float64))
        return _softmax(((rows - self.mean) / self.scale) @ self.weights + self.bias)


def _fit_path(
    features: np.ndarray, targets: np.ndarray, weights: np.ndarray, grid: Sequence[float]
) -> list[SoftmaxPolicy]:
    """A policy per L2 strength of ``grid`` (strongest first; each fit starts from the previous)."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale < 1e-8] = 1.0  # a constant feature stays 0 after centring
    standardized = (features - mean) / scale
    policies: list[SoftmaxPolicy] = []
    start = None
    for l2 in grid:
        start = fit_softmax_regression(standardized, targets, weights, l2, start)
        policies.append(SoftmaxPolicy(mean, scale, *start, l2))
    return policies


@dataclass(frozen=True, eq=False)
class SupervisedFit:
    """The fitted policy and how its L2 strength was chosen."""

    policy: SoftmaxPolicy
    nodes: int
    """Training nodes: every node before the horizon of every training seed."""
    cross_validated: dict[float, float]
    """Mean return of each L2 strength's greedy policy on the left-out folds' seeds."""


def fit_supervised(teacher: TeaMsInstructReplayEnv, grid: Sequence[float] = L2_GRID) -> SupervisedFit:
    """The supervised baseline on ``teacher``'s seeds: the L2 strength of ``grid`` whose greedy
    policy has the best mean return on the left-out seeds of a ``CV_FOLDS``-fold cross-validation
    over those seeds (seed ``i`` of the split in fold ``i mod CV_FOLDS``; ties go to the stronger
    penalty), then refitted on all of them."""
    optimum = env_optimum(teacher)
    targets = optimal_targets(teacher, optimum)
    keys = sorted(targets)
    features = np.stack([node_observation(teacher, *key) for key in keys])
    soft = np.stack([targets[key] for key in keys])
    weights = np.array([float(len(ACTION_NAMES)) ** -len(path) for _, path in keys])
    grid = sorted(grid, reverse=True)
    row = {key: index for index, key in enumerate(keys)}

    def greedy_return(policy: SoftmaxPolicy, seed_id: str) -> float:
        path: tuple[int, ...] = ()
        total = 0.0
        for _ in range(teacher.max_steps):
            path = (*path, int(policy.probabilities(features[row[(seed_id, path)]]).argmax()))
            total += teacher.transition_reward(seed_id, path)
        return total

    seeds = list(teacher.seed_ids)
    folds = min(CV_FOLDS, len(seeds))
    scores = {l2: 0.0 for l2 in grid}
    if folds >= 2 and len(grid) > 1:
        for fold in range(folds):
            left_out = set(seeds[fold::folds])
            inside = np.array([seed_id not in left_out for seed_id, _ in keys])
            for policy in _fit_path(features[inside], soft[inside], weights[inside], grid):
                scores[policy.l2] += sum(greedy_return(policy, seed_id) for seed_id in left_out) / len(seeds)
    chosen = max(grid, key=lambda l2: scores[l2])  # the first (strongest) of equals
    policy = _fit_path(features, soft, weights, [l2 for l2 in grid if l2 >= chosen])[-1]
    return SupervisedFit(policy, len(keys), scores)


_fits: dict[tuple[Any, ...], SupervisedFit] = {}


def shared_fit(teacher: TeaMsInstructReplayEnv) -> SupervisedFit:
    """:func:`fit_supervised` once per pack content, seeds, horizon, observation, encoder and
    reward in this process (a bench asks for it on every split of every run); a custom reward
    function is fitted every time."""
    if teacher.reward_name == "custom":
        return fit_supervised(teacher)
    key = (
        str(teacher.pack.directory.resolve()),
        teacher.pack.manifest.get("content_sha256"),
        tuple(teacher.seed_ids),
        teacher.max_steps,
        teacher.observation_mode,
        teacher.encoder.name,
        teacher.reward_name,
    )
    if key not in _fits:
        _fits[key] = fit_supervised(teacher)
    return _fits[key]


class SupervisedAgent(BaselineAgent):
    """Softmax regression on the training seeds' optimal actions (see the module docstring)."""

    def __init__(self, env: gym.Env | VecEnv, seed: int = 0) -> None:
        super().__init__(env, seed)
        self.fit = shared_fit(training_env(replay_env(env, "supervised")))
        self.policy = self.fit.policy

    def probabilities(self, observation: np.ndarray) -> np.ndarray:
        """The policy's action distribution for each row of ``observation``."""
        return self.policy.probabilities(observation)

    def _actions_for(self, steps: np.ndarray, observations: np.ndarray, deterministic: bool) -> np.ndarray:
        probabilities = self.probabilities(observations)
        if deterministic:
            indices = probabilities.argmax(axis=1)
        else:
            indices = np.array([self.rng.choice(len(p), p=p) for p in probabilities])
        return self._from_indices(indices)


def nearest_training_seeds(env: TeaMsInstructReplayEnv, train_ids: list[str]) -> dict[str, str]:
    """Every seed of ``env``'s pack -> the training seed whose text embedding is the most
    cosine-similar (the first of equals, in the split's order)."""
    from teams_env.replay.embeddings import shared_embeddings

    table = shared_embeddings(env.pack, env.encoder)
    texts = {seed["id"]: seed["text"] for seed in env.pack.seeds}

    def unit(seed_ids: list[str]) -> np.ndarray:
        vectors = np.stack([table.vector(texts[s]) for s in seed_ids]).astype(np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    every = list(texts)
    similarity = unit(every) @ unit(train_ids).T
    return {seed_id: train_ids[int(np.argmax(row))] for seed_id, row in zip(every, similarity)}


class NearestSeedAgent(BaselineAgent):
    """The optimal policy of the most similar training seed (see the module docstring)."""

    def __init__(self, env: gym.Env | VecEnv, seed: int = 0) -> None:
        super().__init__(env, seed)
        self.env = env
        teacher = training_env(replay_env(env, "nearest-seed"))
        self.optimum = env_optimum(teacher)
        self.nearest = nearest_training_seeds(teacher, list(teacher.seed_ids))

    def _actions(self, steps: np.ndarray) -> np.ndarray:
        keys = env_node_keys(self.env)
        if len(keys) != len(steps):
            raise ValueError(f"nearest-seed agent: {len(steps)} observations for {len(keys)} environments")
        return self._from_indices(
            np.array([self.optimum.best_action[(self.nearest[seed_id], path)] for seed_id, path in keys])
        )
