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
  (see :mod:`teams_rl.agents.baselines.simple`);
- ``package.module:Class`` or ``path/to/file.py:Class``: a custom agent class, called as
  ``Class(env, seed)``.

A run of the continuous environment saves its action codec (``action_codec.json``); loading the run
makes the environment decode with it (:func:`use_saved_codec`), so the checkpoint picks the same
actions on any machine, whatever signs this machine's SVD gave the action axes.
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

from teams_env.action_codec import ActionCodec
from teams_rl.agents.baselines.registry import BASELINE_NAMES, PARAMETERISED, is_baseline, make_baseline
from teams_rl.agents.baselines.simple import action_indices, env_codec
from teams_rl.agents.training import own_models
from teams_rl.agents.training.algorithms import ALGORITHMS, get_algorithm
from teams_rl.agents.training.run_dir import RunDir, run_dir_of

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


def saved_codec(spec: str) -> ActionCodec | None:
    """The action codec a run was trained with; None for baselines, custom agents, runs of the
    discrete environment (or older than saved codecs) and checkpoints outside a run directory."""
    if is_baseline(spec):
        return None
    found = _checkpoint(spec)
    if found is None or found[2] is None or not found[2].codec_file.is_file():
        return None
    return ActionCodec.load(found[2].codec_file)


def install_codec(env: gym.Env | VecEnv, codec: ActionCodec, source: str = "the run") -> None:
    """Make ``env`` (every sub-environment of a VecEnv) decode actions with ``codec``."""
    current = env_codec(env)
    if current is None:
        raise ValueError(
            f"{source}: has a continuous action codec, but this environment has discrete actions"
        )
    if current.dim != codec.dim:
        raise ValueError(
            f"{source}: its action codec has {codec.dim} dimensions, this environment's action space {current.dim}"
        )
    if not current.same_as(codec):
        difference = float(np.max(np.abs(current.prototypes - codec.prototypes)))
        logger.info(
            "%s: decoding actions with its saved action codec (this environment's own differs by up to %.3g)",
            source,
            difference,
        )
    if isinstance(env, VecEnv):
        env.set_attr("codec", codec)
    else:
        env.unwrapped.codec = codec  # type: ignore[attr-defined]
    installed = env_codec(env)
    if installed is None or not installed.same_as(codec):
        raise ValueError(f"{source}: cannot set the action codec of {type(env).__name__}")


def use_saved_codec(run: RunDir, env: gym.Env | VecEnv) -> ActionCodec | None:
    """Install ``run``'s saved action codec in ``env``; the codec, or None when the run has none."""
    if not run.codec_file.is_file():
        if env_codec(env) is not None:
            logger.warning(
                "%s: no saved action codec (a run from an older version); decoding with this "
                "environment's, which may differ from the one it was trained with",
                run.path,
            )
        return None
    codec = ActionCodec.load(run.codec_file)
    install_codec(env, codec, str(run.path))
    return codec


def keep_run_codec(run: RunDir, env: VecEnv) -> None:
    """For training: a new run saves the environment's action codec; a resumed one decodes with its
    saved codec (a run older than saved codecs gets this environment's)."""
    if run.codec_file.is_file():
        use_saved_codec(run, env)
    elif (codec := env_codec(env)) is not None:
        codec.save(run.codec_file)


def load_model(algo: str, model_file: Path, env: VecEnv | None = None, device: str = "auto") -> BaseAlgorithm:
    """An SB3 checkpoint, with a warning about pickles unless this machine's training wrote it; a
    damaged file is one error naming it."""
    if not own_models.is_own(model_file):
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


def _load_policy(model_file: Path, algo: str, run: RunDir | None, env: gym.Env | VecEnv, seed: int) -> Agent:
    model = load_model(algo, model_file)
    for name in ("observation_space", "action_space"):
        trained, given = getattr(model, name), getattr(env, name)
        if trained != given:
            raise ValueError(
                f"{model_file}: the policy was trained with {name.replace('_', ' ')} {trained}, but this "
                f"environment has {given}; build it with saved_env_kwargs() of the run"
            )
    if run is not None:
        use_saved_codec(run, env)
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


def _unknown_policy(spec: str) -> ValueError:
    return ValueError(
        f"policy '{spec}' is not a run directory, a .zip checkpoint, module:Class, or a baseline "
        f"({', '.join(BASELINE_NAMES)})"
    )


def check_agent_spec(spec: str) -> None:
    """Fail now, before any model loads, on a spec :func:`load_agent` could never load: a baseline
    name misspelled, a run directory or checkpoint that is not there, a custom class that does not
    import. Nothing is loaded."""
    spec = spec.strip()
    if spec.startswith(PARAMETERISED):
        names = [name.strip() for name in spec.partition(":")[2].split(",") if name.strip()]
        action_indices(names, f"policy '{spec}': a sequence or priority order")
        return
    if is_baseline(spec) or _checkpoint(spec) is not None:
        return
    if ":" in spec:
        import_agent_class(spec)
        return
    raise _unknown_policy(spec)


def load_agent(spec: str, env: gym.Env | VecEnv, *, seed: int = 0) -> Agent:
    """An agent for ``env`` from a spec (see the module docstring)."""
    spec = spec.strip()
    baseline = make_baseline(spec, env, seed)
    if baseline is not None:
        return baseline
    found = _checkpoint(spec)
    if found is not None:
        return _load_policy(*found, env, seed)
    if ":" in spec:
        return _custom_agent(spec, env, seed)
    raise _unknown_policy(spec)
