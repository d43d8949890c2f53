"""Run an agent from given seed instructions, one episode each, in batches that step in lockstep.

Every episode lasts ``max_steps`` steps, so a batch of episodes started together in the batched
vector environment ends together: one expert call and one reviewer call per step for the whole
batch. Used by ``evaluate-policy``, ``generate`` and the benchmarks.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from teams_env.llm.accounting import QueryLedger
from teams_env.seeds import SeedInstruction
from teams_rl.agents.policy import Agent, install_codec, load_agent, saved_codec, saved_env_kwargs

DYNAMICS_KEYS = ("on_failure", "max_steps")
"""Environment options that make the MDP a policy was trained on (for a pack run, the pack's own)."""
RUN_KEYS = ("action_type", "encoder", "action_dim", "observation", "observe_verdicts", *DYNAMICS_KEYS)
"""Environment options taken from a trained run: the spaces its policy sees and emits, and the
dynamics it learned, so that evaluating and generating with it runs the same MDP."""

ActionOverride = Callable[[int, int], int]
"""``(step, chosen action)`` -> the action to take instead; steps count from 1."""


@dataclass
class Trajectory:
    seed: SeedInstruction
    infos: list[dict[str, Any]] = field(default_factory=list)
    """The environment's ``info`` of each step (texts, action, verdict, probability)."""
    rewards: list[float] = field(default_factory=list)


def env_kwargs_for(agent: Agent | str, env_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``env_kwargs`` with a trained run's own spaces (encoder, action type and size, observation)
    and dynamics (``on_failure``, episode length), so the policy acts in the MDP it was trained on;
    unchanged for other agents."""
    kwargs = dict(env_kwargs)
    if isinstance(agent, str):
        saved = saved_env_kwargs(agent) or {}
        kwargs.update({key: saved[key] for key in RUN_KEYS if key in saved})
        if saved and "observe_verdicts" not in saved:  # trained before the option existed: no verdicts
            kwargs["observe_verdicts"] = False
    return kwargs


def dynamics_line(agent: Agent | str, env_kwargs: Mapping[str, Any]) -> str:
    """One line saying which dynamics an agent's episodes run under, and where they come from."""
    used = ", ".join(f"{key}={env_kwargs[key]}" for key in DYNAMICS_KEYS)
    if isinstance(agent, str) and saved_env_kwargs(agent):
        return f"dynamics: {used} (those {agent} was trained with)"
    return f"dynamics: {used}"


def _as_seeds(items: Sequence[SeedInstruction | str]) -> list[SeedInstruction]:
    return [
        item if isinstance(item, SeedInstruction) else SeedInstruction(f"instruction-{index}", item)
        for index, item in enumerate(items)
    ]


def rollout(
    agent: Agent | str,
    instructions: Sequence[SeedInstruction | str],
    env_kwargs: Mapping[str, Any],
    *,
    n_envs: int = 8,
    deterministic: bool = True,
    seed: int = 0,
    ledger: QueryLedger | None = None,
    override: ActionOverride | None = None,
    on_step: Callable[[int], Any] | None = None,
) -> Iterator[list[Trajectory]]:
    """Yield the trajectories of each batch of ``n_envs`` instructions as soon as it is done.

    ``agent`` is an agent object or a spec for :func:`~teams_rl.agents.policy.load_agent`; ``on_step`` is
    called with the batch size after every step (a progress bar's ``update``).
    """
    from teams_env.vector import TeaMsInstructVecEnv

    items = _as_seeds(instructions)
    if not items:
        raise ValueError("no instructions to run the agent on")
    kwargs = env_kwargs_for(agent, env_kwargs)
    codec = saved_codec(agent) if isinstance(agent, str) else None
    ledger = ledger if ledger is not None else QueryLedger()
    envs: dict[int, TeaMsInstructVecEnv] = {}

    def env_of_size(size: int) -> TeaMsInstructVecEnv:
        # Full batches share one env; the last, smaller batch gets its own instead of padding.
        if size not in envs:
            envs[size] = TeaMsInstructVecEnv(size, ledger=ledger, **kwargs)
            if codec is not None:  # every env decodes with the run's codec, not only the first
                install_codec(envs[size], codec, str(agent))
        return envs[size]

    try:
        first = env_of_size(min(n_envs, len(items)))
        policy = load_agent(agent, first, seed=seed) if isinstance(agent, str) else agent
        for start in range(0, len(items), n_envs):
            batch = items[start : start + n_envs]
            yield _run_batch(
                policy,
                env_of_size(len(batch)),
                batch,
                deterministic,
                _batch_seed(seed, batch),
                override,
                on_step,
            )
    finally:
        for env in envs.values():
            env.close()


def _batch_seed(seed: int, batch: Sequence[SeedInstruction]) -> int:
    """A seed that depends only on the run's seed and the batch's instructions, so a resumed run
    replays an unfinished batch exactly as an uninterrupted one would have run it."""
    return (seed * 1_000_003 + zlib.crc32("\n".join(item.id for item in batch).encode("utf-8"))) % 2**31


def _run_batch(
    agent: Agent,
    env: Any,
    batch: Sequence[SeedInstruction],
    deterministic: bool,
    seed: int,
    override: ActionOverride | None,
    on_step: Callable[[int], Any] | None = None,
) -> list[Trajectory]:
    env.seed(seed)
    reseed = getattr(agent, "set_random_seed", None)  # SB3 models and the baselines have it
    if callable(reseed):
        reseed(seed)
    env.set_options([{"instruction": item.text, "seed_id": item.id} for item in batch])
    observation = env.reset()
    trajectories = [Trajectory(item) for item in batch]
    state, episode_start = None, np.ones(len(batch), dtype=bool)
    for step in range(1, env.envs[0].max_steps + 1):
        actions, state = agent.predict(
            observation, state=state, episode_start=episode_start, deterministic=deterministic
        )
        if override is not None:
            actions = _overridden(env, actions, step, override)
        observation, rewards, episode_start, infos = env.step(actions)
        for trajectory, reward, info in zip(trajectories, rewards, infos):
            trajectory.infos.append(info)
            trajectory.rewards.append(float(reward))
        if on_step is not None:
            on_step(len(batch))
    return trajectories


def _overridden(env: Any, actions: np.ndarray, step: int, override: ActionOverride) -> np.ndarray:
    """The agent's actions with ``override`` applied, in the environment's own action format."""
    out = []
    for sub_env, action in zip(env.envs, actions):
        chosen = override(step, sub_env.decode_action(action))
        out.append(sub_env.codec.encode(chosen) if sub_env.codec is not None else chosen)
    return np.asarray(out)


# -- episodes on a replay env, one per seed of its split (pack training and the pack bench) --


def policy_actor(policy: Any) -> Any:
    """``act(observation, step)`` for an SB3-style ``policy.predict``: its most likely action, with
    the state it returned carried through the episode and reset at step 0 (a recurrent policy's
    memory, a baseline's step counter)."""
    state = None

    def act(observation: Any, step: int) -> Any:
        nonlocal state
        action, state = policy.predict(
            observation,
            state=state if step else None,
            episode_start=np.array([step == 0]),
            deterministic=True,
        )
        return action

    return act


def play_episodes(env: Any, act: Any) -> list[dict[str, Any]]:
    """One episode from each seed of ``env``'s split; ``act(observation, step)`` picks the action."""
    results = []
    for seed_id in env.unwrapped.seed_ids:
        observation, _ = env.reset(options={"seed_id": seed_id})
        total, infos, done, step = 0.0, [], False, 0
        while not done:
            observation, reward, terminated, truncated, info = env.step(act(observation, step))
            total += float(reward)
            infos.append(info)
            done, step = terminated or truncated, step + 1
        results.append({"seed_id": seed_id, "return": total, "infos": infos})
    return results
