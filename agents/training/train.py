"""``teams-rl train``: train the instructor policy with an SB3 / sb3-contrib algorithm.

The policy acts in a batched vector environment (:class:`~teams_env.vector.TeaMsInstructVecEnv`
in SB3's ``VecMonitor``): each step sends one batched expert call and one batched reviewer call
for all sub-environments. With ``--pack`` it acts in the replay env of a recorded pack instead, with
the live env's spaces, and is evaluated on the pack's held-out seeds at the end
(:mod:`teams_rl.agents.training.pack_training`). Everything the run produces goes into its run directory (layout in
:mod:`teams_rl.agents.training.run_dir`); ``--resume RUN_DIR`` continues it from its latest checkpoint and appends
to its logs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from teams_env import env_id as registered_id
from teams_env.llm.accounting import ROLES, QueryLedger, RoleUsage
from teams_env.options import build, dump
from teams_rl.agents.commands import TrainConfig
from teams_rl.agents.training import own_models
from teams_rl.agents.training.algorithms import Algorithm, get_algorithm
from teams_rl.agents.training.hyperparameters import load_hyperparams, model_arguments
from teams_rl.agents.training.pack_training import (
    checkpoint_steps,
    evaluate_on_pack,
    live_env_kwargs,
    load_training_pack,
)
from teams_rl.agents.training.pack_training import make_vec_env as make_pack_vec_env
from teams_rl.agents.training.run_dir import RunDir

logger = logging.getLogger(__name__)

FIXED_BY_RUN = ("algo", "action_type", "encoder", "action_dim", "observation", "max_steps", "pack")
"""Options a resumed run cannot change: they fix the model's class, its spaces and its MDP."""


def _resumed_config(config: TrainConfig) -> tuple[TrainConfig, RunDir]:
    """The run's saved config, with the options given now that differ from their defaults."""
    run = RunDir(Path(config.resume).expanduser())
    if not run.is_run():
        raise FileNotFoundError(f"{run.path}: not a training run directory (no config.yaml) to resume")
    saved = build(TrainConfig, run.read_config(), str(run.config_file))
    defaults = TrainConfig()
    changed = {
        item.name: getattr(config, item.name)
        for item in dataclasses.fields(config)
        if item.name != "resume"
        and getattr(config, item.name) != getattr(defaults, item.name)
        and getattr(config, item.name) != getattr(saved, item.name)
    }
    for name in FIXED_BY_RUN:
        if name in changed:
            raise ValueError(
                f"--resume {run.path}: cannot change {name} of a run "
                f"(it was {getattr(saved, name)!r}, got {changed[name]!r})"
            )
    if changed:
        logger.info("resuming %s with changed options: %s", run.path, changed)
    merged = dataclasses.replace(saved, **changed, resume=str(run.path))
    merged.validate()
    return merged, run


def _check_resumed_hyperparams(run: RunDir, hyperparams: Mapping[str, Any]) -> None:
    """A resumed run continues its checkpoint's model, which was built with the run's
    hyperparameters: new ones would be written to the run's files but not applied, so they are
    refused."""
    saved_file = run.path / "hyperparams.yaml"
    if not saved_file.is_file():
        return
    saved = yaml.safe_load(saved_file.read_text(encoding="utf-8")) or {}
    now = yaml.safe_load(yaml.safe_dump(dict(hyperparams), sort_keys=False)) or {}
    changed = sorted(key for key in set(saved) | set(now) if saved.get(key) != now.get(key))
    if changed:
        listed = ", ".join(f"{key}: {saved.get(key)!r} -> {now.get(key)!r}" for key in changed)
        raise ValueError(
            f"--resume {run.path}: cannot change the hyperparameters of a run ({listed}); "
            "the checkpoint's model keeps its own, so start a new run to use these"
        )


def _new_run_dir(config: TrainConfig, env_id: str, algorithm: Algorithm) -> RunDir:
    name = config.run_name or f"{env_id}__{algorithm.name}__{config.seed}__{int(time.time())}"
    run = RunDir(Path(config.out).expanduser() / name)
    if run.path.exists():
        raise ValueError(
            f"{run.path}: run directory exists; continue it with --resume {run.path} or choose another --run-name"
        )
    run.checkpoints.mkdir(parents=True)
    return run


def _with_pack_dynamics(config: TrainConfig, env_kwargs: Mapping[str, Any]) -> TrainConfig:
    """``config`` with the dynamics the pack fixes (its ``on_failure`` and leak penalty, episodes of
    its depth), so the run's config.yaml records what training actually used."""
    used = {key: env_kwargs[key] for key in ("on_failure", "max_steps", "leak_penalty")}
    changed = {key: value for key, value in used.items() if getattr(config, key) != value}
    if changed:
        logger.info(
            "the pack fixes %s",
            ", ".join(f"{key}={value} (asked: {getattr(config, key)})" for key, value in changed.items()),
        )
    return dataclasses.replace(config, **used)


def _write_run_files(
    run: RunDir, config: TrainConfig, env_kwargs: Mapping[str, Any], hyperparams: Mapping[str, Any]
) -> None:
    run.config_file.write_text(yaml.safe_dump(dump(config), sort_keys=False), encoding="utf-8")
    (run.path / "hyperparams.yaml").write_text(
        yaml.safe_dump(dict(hyperparams), sort_keys=False), encoding="utf-8"
    )
    saved: dict[str, Any] = {}
    for key, value in env_kwargs.items():
        try:
            json.dumps(value)
            saved[key] = value
        except TypeError:
            logger.warning(
                "env option %s is a Python object (%s): not saved in env_kwargs.json; pass it again to rebuild the env",
                key,
                type(value).__name__,
            )
    run.env_kwargs_file.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")


def _ledger_with_history(run: RunDir) -> QueryLedger:
    """A ledger that starts from the counts of the run's earlier segments (resume)."""
    ledger = QueryLedger()
    if run.queries_file.is_file():
        history = json.loads(run.queries_file.read_text(encoding="utf-8"))
        for role in ROLES:
            if role in history:
                ledger.record(role, RoleUsage(**history[role]))
    return ledger


def _build_model(config: TrainConfig, algorithm: Algorithm, hyperparams: Mapping[str, Any], env: Any) -> Any:
    policy, arguments = model_arguments(hyperparams)
    try:
        return algorithm.load_class()(
            policy, env, seed=config.seed, device=config.device, verbose=0, **arguments
        )
    except (AssertionError, TypeError, ValueError, KeyError) as error:
        raise ValueError(
            f"{algorithm.name}: cannot build the model with these hyperparameters ({error})"
        ) from error


def _resume_model(config: TrainConfig, run: RunDir, env: Any) -> Any:
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    from teams_rl.agents.policy import load_model

    found = run.latest_checkpoint()
    if found is None:
        raise FileNotFoundError(f"{run.checkpoints}: no checkpoint to resume from")
    model_file, steps = found
    model = load_model(config.algo, model_file, env=env, device=config.device)
    if isinstance(model, OffPolicyAlgorithm) and run.replay_buffer(steps).is_file():
        model.load_replay_buffer(run.replay_buffer(steps))
    # New episodes and exploration noise, not a replay of the first segment's.
    model.set_random_seed(config.seed + steps)
    logger.info("resuming %s from %s (%d steps)", run.path, model_file.name, steps)
    return model


def _save_checkpoint(model: Any, run: RunDir) -> Path:
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    steps = model.num_timesteps
    model.save(run.checkpoint(steps))
    if isinstance(model, OffPolicyAlgorithm):
        model.save_replay_buffer(run.replay_buffer(steps))
    return run.checkpoint(steps)


def train(config: TrainConfig, env_overrides: Mapping[str, Any] | None = None) -> Path:
    """Train (or, with ``config.resume``, continue) a run; returns its directory.

    ``env_overrides`` replaces environment keyword arguments with Python objects that a config file
    cannot hold (tests pass ``expert=ScriptedBackend(...)``); objects are not saved in
    ``env_kwargs.json``, so pass them again when resuming or loading.
    """
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import VecMonitor

    from teams_env.vector import TeaMsInstructVecEnv
    from teams_rl.agents.plots import plot_reward_curve
    from teams_rl.agents.policy import keep_run_codec
    from teams_rl.agents.training.callbacks import InstructorMetricsCallback
    from teams_rl.agents.training.run_logger import run_logger

    config.validate()
    resuming = bool(config.resume)
    if resuming:
        config, run_dir = _resumed_config(config)
    algorithm = get_algorithm(config.algo)
    action_type = algorithm.resolve_action_type(config.action_type)
    pack = load_training_pack(config) if config.pack else None
    env_id = registered_id(action_type, observe_verdicts=config.observe_verdicts, replay=pack is not None)
    hyperparams = load_hyperparams(algorithm, config.hyperparams_file, config.hyperparams)
    if resuming:
        _check_resumed_hyperparams(run_dir, hyperparams)
    else:
        run_dir = _new_run_dir(config, env_id, algorithm)
    if pack is None:
        env_kwargs = {**config.env_kwargs(), "action_type": action_type, **(env_overrides or {})}
    else:  # the live env the policy will drive: the spaces of the replay env it trains on
        env_kwargs = live_env_kwargs(config, action_type, pack, env_overrides)
        config = _with_pack_dynamics(config, env_kwargs)
    _write_run_files(run_dir, config, env_kwargs, hyperparams)

    if config.torch_threads:
        import torch

        torch.set_num_threads(config.torch_threads)
    set_random_seed(config.seed)
    ledger = _ledger_with_history(run_dir)
    if pack is None:
        env = VecMonitor(TeaMsInstructVecEnv(config.n_envs, ledger=ledger, **env_kwargs))
    else:  # no model is loaded and no query made: the ledger stays empty
        env = make_pack_vec_env(config, action_type, pack)
    try:
        keep_run_codec(run_dir, env)
        model = (
            _resume_model(config, run_dir, env)
            if resuming
            else _build_model(config, algorithm, hyperparams, env)
        )
        model.set_logger(run_logger(run_dir.path, run_dir.metrics_file))
        callback = CallbackList(
            [
                CheckpointCallback(
                    save_freq=max(1, checkpoint_steps(config) // config.n_envs),
                    save_path=str(run_dir.checkpoints),
                    name_prefix="model",
                    save_replay_buffer=True,
                ),
                InstructorMetricsCallback(ledger, run_dir.episodes_file),
            ]
        )
        remaining = config.total_timesteps - model.num_timesteps
        try:
            if remaining > 0:
                model.learn(
                    total_timesteps=remaining,
                    callback=callback,
                    progress_bar=config.progress_bar,
                    reset_num_timesteps=not resuming,
                )
        except KeyboardInterrupt:
            # Keep the steps already paid for in LLM calls.
            _save_checkpoint(model, run_dir)
            logger.warning("interrupted; continue with: teams-rl train --resume %s", run_dir.path)
            raise
        finally:
            model.logger.close()
        shutil.copyfile(_save_checkpoint(model, run_dir), run_dir.final_model)
    finally:
        env.close()
        own_models.remember([*run_dir.checkpoints.glob("*.zip"), run_dir.final_model])
        run_dir.queries_file.write_text(json.dumps(ledger.as_dict(), indent=2) + "\n", encoding="utf-8")

    references: dict[str, float] = {}
    evaluation = None
    if pack is not None:
        evaluation = evaluate_on_pack(model, config, action_type, pack, run_dir.path)
        train_split = evaluation["splits"]["train"]
        references = {
            "uniform (expected)": train_split["uniform"],
            f"best fixed ({', '.join(evaluation['best_fixed_sequence'])})": train_split["best_fixed"],
            "optimal": train_split["optimal"],
        }
    xlabel = (
        "replay steps (recorded transitions, no LLM call)"
        if pack
        else "environment steps (reviewer requests)"
    )
    plot_reward_curve(
        run_dir.episodes_file,
        run_dir.metrics_file,
        run_dir.reward_curve,
        f"{run_dir.path.name}: reward curve" + (" on the pack's train seeds" if pack else ""),
        references=references,
        xlabel=xlabel,
    )
    print(f"\n{run_dir.path}: {model.num_timesteps} steps of {algorithm.name} on {env_id}")
    if evaluation is not None:
        print(_pack_summary(evaluation))
    else:
        print(ledger.format_table())
    return run_dir.path


def _pack_summary(evaluation: Mapping[str, Any]) -> str:
    """One line per split: the deterministic policy's return and normalized score, and the references."""
    lines = []
    for split, result in evaluation["splits"].items():
        if result is None:
            continue
        score = result["normalized"]
        lines.append(
            f"{split} seeds ({result['seeds']}): return {result['return']:.3f}, normalized "
            f"{'n/a' if score is None else f'{score:.3f}'} (uniform {result['uniform']:.3f}, best fixed "
            f"{result['best_fixed']:.3f}, optimal {result['optimal']:.3f})"
        )
    return "\n".join(lines)


def run(config: TrainConfig) -> int:
    train(config)
    return 0
