"""Anything that picks rewrites: a trained SB3 model, a baseline, or your own class.

An agent is any object with SB3's ``predict(observation, state, episode_start, deterministic)``
returning ``(actions, state)``; it must accept a batch of observations from a VecEnv (shape
``(n_envs, obs_dim)``) and return one action per row. SB3 models already are agents.

:func:`load_agent` turns a spec string into one:

- a training run directory: its ``final_model.zip`` (else its latest checkpoint), loaded with the
  algorithm recorded in its ``config.yaml``;
- an SB3 ``.zip``: the algorithm comes from the run's ``config.yaml`` next to it (or one folder
  up, for ``checkpoints/``), or from a prefix: ``trpo:path/to/model.zip``;
- a baseline: ``uniform``, ``random-continuous``, ``reference``, ``fixed:NAME,NAME,...``
  (see :mod:`agents.baselines`);
- ``package.module:Class`` or ``path/to/file.py:Class``: a custom agent class, called as
  ``Class(env, seed)``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from agents.algorithms import ALGORITHMS, get_algorithm
from agents.baselines import BASELINE_NAMES, is_baseline, make_baseline
from agents.run_dir import RunDir, run_dir_of

logger = logging.getLogger(__name__)


@runtime_checkable
class Agent(Protocol):
    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]: ...


def _checkpoint(spec: str) -> tuple[Path, str, RunDir | None] | None:
    """(model file, algorithm, its run) for a run directory or .zip spec; None for other specs."""
    prefix, sep, rest = spec.partition(":")
    algo = prefix.lower() if sep and prefix.lower() in ALGORITHMS else ""
    path = Path(rest if algo else spec).expanduser()
    if path.is_dir():
        run = RunDir(path)
        if not run.is_run():
            raise FileNotFoundError(f"{path}: not a training run directory (no config.yaml)")
        latest = run.latest_checkpoint()
        model_file = run.final_model if run.final_model.is_file() else (latest[0] if latest else None)
        if model_file is None:
            raise FileNotFoundError(f"{path}: no final_model.zip and no checkpoint in {run.checkpoints}")
        return model_file, algo or str(run.read_config().get("algo", "")), run
    if path.suffix != ".zip":
        return None
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    run = run_dir_of(path)
    if not algo and run is not None:
        algo = str(run.read_config().get("algo", ""))
    if not algo:
        raise ValueError(
            f"{path}: no run config.yaml next to it says which algorithm saved it; write ALGO:{path}"
        )
    return path, algo, run


def saved_env_kwargs(spec: str) -> dict[str, Any] | None:
    """The env kwargs a run was trained with (so the policy sees the same spaces), None for baselines,
    custom agents and checkpoints outside a run directory."""
    if is_baseline(spec):
        return None
    found = _checkpoint(spec)
    if found is None or found[2] is None:
        return None
    return found[2].read_env_kwargs()


def load_model(algo: str, model_file: Path, env: VecEnv | None = None, device: str = "auto") -> BaseAlgorithm:
    """An SB3 checkpoint, with a warning about pickles; a damaged file is one error naming it."""
    logger.warning(
        "loading %s: SB3 checkpoints contain pickled Python objects; load only files from sources you trust",
        model_file,
    )
    algorithm_class = get_algorithm(algo).load_class()
    try:
        return algorithm_class.load(model_file, env=env, device=device)
    except Exception as error:  # a damaged file fails in zipfile, json, pickle or torch: one message
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(
            f"{model_file}: not a usable {algo} checkpoint ({type(error).__name__}{': ' + reason if reason else ''})"
        ) from error


def _load_policy(model_file: Path, algo: str, env: gym.Env | VecEnv, seed: int) -> Agent:
    model = load_model(algo, model_file)
    for name in ("observation_space", "action_space"):
        trained, given = getattr(model, name), getattr(env, name)
        if trained != given:
            raise ValueError(
                f"{model_file}: the policy was trained with {name.replace('_', ' ')} {trained}, but this "
                f"environment has {given}; build it with saved_env_kwargs() of the run"
            )
    model.set_random_seed(seed)
    return model


def import_agent_class(spec: str) -> type:
    """The class named by ``package.module:Class`` or ``path/to/file.py:Class``."""
    module_name, _, class_name = spec.rpartition(":")
    if module_name.endswith(".py"):
        file = Path(module_name).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"{file}: agent file not found")
        module_spec = importlib.util.spec_from_file_location(file.stem, file)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ValueError(f"agent '{spec}': cannot import module '{module_name}' ({error})") from error
    agent_class = getattr(module, class_name, None)
    if not isinstance(agent_class, type):
        raise ValueError(f"agent '{spec}': '{module_name}' has no class '{class_name}'")
    return agent_class


def _custom_agent(spec: str, env: gym.Env | VecEnv, seed: int) -> Agent:
    agent = import_agent_class(spec)(env, seed)
    if not isinstance(agent, Agent):
        raise ValueError(
            f"agent '{spec}': it has no predict(observation, state, episode_start, deterministic)"
        )
    return agent


def load_agent(spec: str, env: gym.Env | VecEnv, *, seed: int = 0) -> Agent:
    """An agent for ``env`` from a spec (see the module docstring)."""
    spec = spec.strip()
    baseline = make_baseline(spec, env, seed)
    if baseline is not None:
        return baseline
    found = _checkpoint(spec)
    if found is not None:
        return _load_policy(found[0], found[1], env, seed)
    if ":" in spec:
        return _custom_agent(spec, env, seed)
    raise ValueError(
        f"policy '{spec}' is not a run directory, a .zip checkpoint, module:Class, or a baseline "
        f"({', '.join(BASELINE_NAMES)})"
    )
