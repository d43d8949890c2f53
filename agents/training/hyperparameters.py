"""Hyperparameters of an algorithm: the shipped ``agents/training/hyperparams/ALGO.yml`` (or a YAML file of
your own), then overrides from ``--hyperparams`` or a run config's ``hyperparams:`` mapping.

Overrides on the command line are ``KEY=VALUE`` pairs separated by commas (parsed by
:func:`teams_env.options.parse_mapping`); a dotted key reaches into a mapping, and values are
read as YAML (numbers, lists, mappings)::

    --hyperparams learning_rate=3e-4,n_steps=12,policy_kwargs.net_arch=[32,32]
    --hyperparams "{target_kl: 0.05, policy_kwargs: {net_arch: [128, 128]}}"

Every key is checked against the algorithm's constructor, so a typo is an error naming the file
or flag it came from, not a silently ignored value.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from teams_env.options import check_keys, load_preset, numbers_from_yaml
from teams_rl.agents.training.algorithms import Algorithm

HYPERPARAMS_DIR = Path(__file__).parent / "hyperparams"
SET_BY_TRAIN = ("env", "seed", "verbose", "tensorboard_log", "device", "_init_setup_model")
"""Constructor arguments that ``teams-rl train`` sets itself (flags: --seed, --device)."""


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _allowed_keys(algorithm: Algorithm) -> list[str]:
    parameters = inspect.signature(algorithm.load_class().__init__).parameters
    return [name for name in parameters if name not in ("self", "kwargs", *SET_BY_TRAIN)]


def _check_keys(algorithm: Algorithm, values: Mapping[str, Any], source: str) -> None:
    for key in values:
        if key in SET_BY_TRAIN:
            raise ValueError(
                f"{source}: '{key}' is set by teams-rl train itself (use --seed / --device), not a hyperparameter"
            )
    check_keys(values, _allowed_keys(algorithm), source, f"not a hyperparameter of {algorithm.name}")


def load_hyperparams(
    algorithm: Algorithm, file: str = "", overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The algorithm's hyperparameters as plain data: ``file`` (a shipped name or a YAML file;
    default: the algorithm's shipped YAML) with
    ``overrides`` merged in (mappings are merged key by key)."""
    base = numbers_from_yaml(
        load_preset(
            file or algorithm.name,
            HYPERPARAMS_DIR,
            lambda values, where: _check_keys(algorithm, values, where),
        )
    )
    overrides = numbers_from_yaml(dict(overrides or {}))
    _check_keys(algorithm, overrides, "--hyperparams")
    return _merge(base, overrides)


def _activation(name: Any) -> Any:
    """``activation_fn: ReLU`` in YAML as ``torch.nn.ReLU``."""
    from torch import nn

    if not isinstance(name, str):
        return name
    found = getattr(nn, name, None)
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise ValueError(
            f"policy_kwargs.activation_fn: '{name}' is not a torch.nn activation (e.g. ReLU, Tanh)"
        )
    return found


def model_arguments(hyperparams: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(policy name, keyword arguments for the algorithm's constructor)."""
    arguments = copy.deepcopy(dict(hyperparams))
    policy = str(arguments.pop("policy", "MlpPolicy"))
    policy_kwargs = arguments.get("policy_kwargs")
    if isinstance(policy_kwargs, dict) and "activation_fn" in policy_kwargs:
        policy_kwargs["activation_fn"] = _activation(policy_kwargs["activation_fn"])
    return policy, arguments
