"""The exact optimum of a recorded MDP, by dynamic programming over its tree.

A node of a pack is a whole action history, so any reward of the episode so far (the reviewer's,
novelty, a rubric) is a reward of the node, and backward induction over the tree is exact:
``V(node) = max_a r(node + a) + gamma * V(node + a)`` with ``V = 0`` at the horizon. The best
fixed action sequence (one sequence for every seed, chosen for the best mean return) is the
ceiling of a text-blind policy such as the authors' last-action observation.
Ties go to the lowest action index, so the answer is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

RewardOf = Callable[[str, tuple[int, ...]], float]
"""The reward of the step that reaches path ``path`` from seed ``seed_id``."""


@dataclass(frozen=True)
class Optimum:
    horizon: int
    gamma: float
    values: dict[tuple[str, tuple[int, ...]], float]
    """The best return from each node to the horizon (a root's is the seed's best return)."""
    best_action: dict[tuple[str, tuple[int, ...]], int]
    """The action of an optimal policy at each node before the horizon."""
    best_fixed: tuple[int, ...]
    """The action sequence with the best mean return over the seeds."""
    fixed_returns: dict[str, float]
    """Each seed's return under ``best_fixed``."""

    def seed_value(self, seed_id: str) -> float:
        return self.values[(seed_id, ())]

    @property
    def mean_value(self) -> float:
        """The optimal mean return over the seeds (each seed equally likely)."""
        roots = [value for (_, path), value in self.values.items() if not path]
        return float(np.mean(roots))

    @property
    def best_fixed_return(self) -> float:
        return float(np.mean(list(self.fixed_returns.values())))


def solve(
    reward_of: RewardOf, seed_ids: Sequence[str], n_actions: int, horizon: int, gamma: float = 1.0
) -> Optimum:
    """Optimal values, actions and the best fixed sequence of the tree of ``seed_ids`` to ``horizon``.

    ``gamma=1`` maximises the sum of an episode's rewards (what evaluation reports); give the
    training discount to see the optimum an agent with that discount aims for."""
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    if not seed_ids:
        raise ValueError("no seeds to solve")
    values: dict[tuple[str, tuple[int, ...]], float] = {}
    best_action: dict[tuple[str, tuple[int, ...]], int] = {}

    def value(seed_id: str, path: tuple[int, ...]) -> float:
        if len(path) == horizon:
            return 0.0
        returns = []
        for action in range(n_actions):
            child = (*path, action)
            returns.append(reward_of(seed_id, child) + gamma * value(seed_id, child))
        best = int(np.argmax(returns))  # the first of equals
        values[(seed_id, path)] = returns[best]
        best_action[(seed_id, path)] = best
        return returns[best]

    for seed_id in seed_ids:
        value(seed_id, ())
    sequence, per_seed = _best_fixed(reward_of, list(seed_ids), n_actions, horizon, gamma)
    return Optimum(horizon, gamma, values, best_action, sequence, dict(zip(seed_ids, per_seed)))


def _best_fixed(
    reward_of: RewardOf, seed_ids: list[str], n_actions: int, horizon: int, gamma: float
) -> tuple[tuple[int, ...], list[float]]:
    """Depth-first over action sequences, carrying every seed's return so far as one vector."""
    best: tuple[float, tuple[int, ...], np.ndarray] = (-np.inf, (), np.zeros(len(seed_ids)))

    def visit(prefix: tuple[int, ...], returns: np.ndarray) -> None:
        nonlocal best
        if len(prefix) == horizon:
            mean = float(returns.mean())
            if mean > best[0]:  # strictly: the first sequence of equals stays
                best = (mean, prefix, returns)
            return
        discount = gamma ** len(prefix)
        for action in range(n_actions):
            child = (*prefix, action)
            step = np.array([reward_of(seed_id, child) for seed_id in seed_ids])
            visit(child, returns + discount * step)

    visit((), np.zeros(len(seed_ids)))
    return best[1], [float(r) for r in best[2]]


def sequence_returns(
    reward_of: RewardOf, seed_ids: Sequence[str], sequence: Sequence[int], gamma: float = 1.0
) -> dict[str, float]:
    """Each seed's return when ``sequence`` is played from it, whatever the instruction (a fixed
    action sequence, e.g. the best one chosen on other seeds)."""
    prefixes = [tuple(sequence[: depth + 1]) for depth in range(len(sequence))]
    return {
        seed_id: float(
            sum(gamma**depth * reward_of(seed_id, prefix) for depth, prefix in enumerate(prefixes))
        )
        for seed_id in seed_ids
    }


def uniform_returns(
    reward_of: RewardOf, seed_ids: Sequence[str], n_actions: int, horizon: int, gamma: float = 1.0
) -> dict[str, float]:
    """Each seed's exact expected return under the uniform policy (Evol-Instruct's sampling):
    ``U(node) = mean_a r(node + a) + gamma * U(node + a)``, the floor of a normalized score."""

    def value(seed_id: str, path: tuple[int, ...]) -> float:
        if len(path) == horizon:
            return 0.0
        children = [(*path, action) for action in range(n_actions)]
        return float(
            np.mean([reward_of(seed_id, child) + gamma * value(seed_id, child) for child in children])
        )

    return {seed_id: value(seed_id, ()) for seed_id in seed_ids}
