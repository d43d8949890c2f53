"""Training the instructor on a recorded transition pack (``teams-rl train --pack PACK``).

The replay env (:mod:`teams_env.replay.env`) of the pack's ``train`` seeds serves the MDP at thousands
of steps a second with the live env's observation and action spaces: the observation embeds the
current instruction with the pack's encoder (the same float16 vector the live env computes), and the
continuous action codec is built from that encoder's embeddings of the same action prompts. So the
run's ``env_kwargs.json`` describes the live env with those spaces (the pack's encoder, episodes of
the pack's depth, its ``on_failure`` and ``leak_penalty``), and ``generate`` drives the live expert
with the trained policy unchanged.

At the end, :func:`evaluate_on_pack` plays one episode per seed of each split with the policy's most
likely action (the replay env is deterministic, so each return is exact) and normalizes the mean
return as ``teams-rl bench --pack`` does: ``(R - uniform) / (optimal - uniform)``, with uniform
sampling's exact expected return and the optimum from dynamic programming (:mod:`teams_env.replay.optimum`),
beside the best fixed action sequence chosen on the train seeds. It writes ``pack_eval.json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from teams_env.actions import ACTION_NAMES
from teams_env.env_config import ENV_DEFAULTS
from teams_env.replay.pack import Pack, pack_directory, shared_pack
from teams_rl.agents.commands import TrainConfig

PACK_EVAL_FILE = "pack_eval.json"
SPLITS = ("train", "heldout")
REWARD = "reviewer"
"""The replay env's reward for training: the live env's, as recorded."""


PACK_CHECKPOINT_FREQ = 5000
"""Steps between checkpoints of a pack run left at the live default: its steps cost no LLM call, and
a checkpoint of the text-observation policy is about half a megabyte."""


def checkpoint_steps(config: TrainConfig) -> int:
    """Environment steps between checkpoints: ``checkpoint_freq``, except that a pack run left at the
    default saves every ``PACK_CHECKPOINT_FREQ``."""
    default = next(item.default for item in dataclasses.fields(TrainConfig) if item.name == "checkpoint_freq")
    if config.pack and config.checkpoint_freq == default:
        return PACK_CHECKPOINT_FREQ
    return config.checkpoint_freq


def load_training_pack(config: TrainConfig) -> Pack:
    return shared_pack(pack_directory(config.pack))


def episode_steps(config: TrainConfig, pack: Pack) -> int:
    """Rewrites per episode: the pack's depth, or ``max_steps`` where that is smaller."""
    return min(config.max_steps, pack.depth)


def _encoder(config: TrainConfig) -> str | None:
    """The encoder asked of the replay env: the pack's (None) unless one other than the default is
    named, which the replay env then checks against the pack's."""
    return None if config.encoder == ENV_DEFAULTS.encoder else config.encoder


def replay_kwargs(config: TrainConfig, action_type: str, pack: Pack, split: str = "train") -> dict[str, Any]:
    """Keyword arguments of :class:`~teams_env.replay.env.TeaMsInstructReplayEnv` on ``split``."""
    return {
        "pack": pack,
        "seeds": split,
        "action_type": action_type,
        "action_dim": config.action_dim,
        "observation": config.observation,
        "observe_verdicts": config.observe_verdicts,
        "max_steps": episode_steps(config, pack),
        "encoder": _encoder(config),
        "reward": REWARD,
    }


def live_env_kwargs(
    config: TrainConfig, action_type: str, pack: Pack, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The live env's keyword arguments with the spaces of the replay env the policy trains on (what
    the run saves in ``env_kwargs.json`` for ``generate`` and ``evaluate-policy``)."""
    from teams_env.replay.env import pack_encoder_spec

    manifest = pack.manifest
    return {
        **config.env_kwargs(),
        # The policy learned the MDP of the pack's expert: it drives that expert live.
        "expert": pack.expert_spec or config.expert,
        "reviewer_head": pack.reviewer_head_spec or config.reviewer_head,
        **(overrides or {}),
        "action_type": action_type,
        "encoder": config.encoder if _encoder(config) else pack_encoder_spec(manifest),
        "max_steps": episode_steps(config, pack),
        "on_failure": str(manifest.get("on_failure", config.on_failure)),
        "leak_penalty": float(manifest.get("leak_penalty", config.leak_penalty)),
    }


def make_vec_env(config: TrainConfig, action_type: str, pack: Pack) -> Any:
    """``n_envs`` replay envs of the pack's train seeds in SB3's ``VecMonitor``."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from teams_env.replay.env import TeaMsInstructReplayEnv

    kwargs = replay_kwargs(config, action_type, pack)
    return VecMonitor(DummyVecEnv([partial(TeaMsInstructReplayEnv, **kwargs) for _ in range(config.n_envs)]))


def _normalized(value: float, uniform: float, optimal: float) -> float | None:
    span = optimal - uniform
    return (value - uniform) / span if span > 0 else None


def evaluate_on_pack(
    model: Any, config: TrainConfig, action_type: str, pack: Pack, run_path: Path
) -> dict[str, Any]:
    """The policy's deterministic return on each split of the pack against the exact uniform,
    best-fixed and optimal returns; written to ``run_path / pack_eval.json`` and returned."""
    from teams_env.replay.env import TeaMsInstructReplayEnv
    from teams_env.replay.optimum import sequence_returns, uniform_returns
    from teams_rl.agents.baselines.oracles import env_optimum
    from teams_rl.agents.episodes import play_episodes, policy_actor
    from teams_rl.agents.policy import use_saved_codec
    from teams_rl.agents.training.run_dir import RunDir

    # Ceilings need no observation: the last-action mode loads no embeddings.
    def ceiling_env(split: str) -> TeaMsInstructReplayEnv:
        kwargs = replay_kwargs(config, "discrete", pack, split) | {"observation": "last_action"}
        return TeaMsInstructReplayEnv(**kwargs)

    steps = episode_steps(config, pack)
    best_fixed = env_optimum(ceiling_env("train")).best_fixed
    splits: dict[str, Any] = {}
    for split in SPLITS:
        seed_ids = pack.split(split) if split in pack.manifest.get("splits", {}) else []
        if not seed_ids:
            splits[split] = None
            continue
        ceiling = ceiling_env(split)
        optimum = env_optimum(ceiling)
        uniform = uniform_returns(ceiling.transition_reward, ceiling.seed_ids, len(ACTION_NAMES), steps)
        fixed = sequence_returns(ceiling.transition_reward, ceiling.seed_ids, best_fixed[:steps]).values()
        env = TeaMsInstructReplayEnv(**replay_kwargs(config, action_type, pack, split))
        use_saved_codec(RunDir(run_path), env)  # decode as in training
        episodes = [
            {
                "seed_id": episode["seed_id"],
                "return": episode["return"],
                "actions": [info["action_name"] for info in episode["infos"]],
            }
            for episode in play_episodes(env, policy_actor(model))
        ]
        mean = {
            "return": float(np.mean([episode["return"] for episode in episodes])),
            "uniform": float(np.mean(list(uniform.values()))),
            "best_fixed": float(np.mean(list(fixed))),
            "optimal": optimum.mean_value,
        }
        splits[split] = {
            "seeds": len(seed_ids),
            **mean,
            "normalized": _normalized(mean["return"], mean["uniform"], mean["optimal"]),
            "best_fixed_normalized": _normalized(mean["best_fixed"], mean["uniform"], mean["optimal"]),
            "episodes": [
                {
                    **episode,
                    "uniform": uniform[episode["seed_id"]],
                    "optimal": optimum.seed_value(episode["seed_id"]),
                }
                for episode in episodes
            ],
        }
    result = {
        "pack": str(pack.directory),
        "pack_content_sha256": str(pack.manifest.get("content_sha256", "")),
        "depth": pack.depth,
        "max_steps": steps,
        "reward": REWARD,
        "timesteps": int(model.num_timesteps),
        "policy": "deterministic (most likely action), one episode per seed",
        "normalized": "(R - uniform) / (optimal - uniform) of the split's mean returns: 0 uniform, 1 optimal",
        "best_fixed_sequence": [ACTION_NAMES[action] for action in best_fixed],
        "splits": splits,
        "heldout_normalized": (splits["heldout"] or {}).get("normalized"),
    }
    (run_path / PACK_EVAL_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
