"""SFT hyperparameter presets: YAML files that fill the options a user did not give.

Precedence, lowest first: the ``default`` preset, the chosen preset, ``--config`` YAML, flags. The
preset-able options are the ones whose dataclass default is ``None`` (unset).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from teams_env.options import build, check_keys, load_preset
from teams_rl.finetune.commands import SFTConfig

DEFAULT_PRESET = "default"
PRESETS_DIR = Path(__file__).with_name("presets")


def preset_fields() -> tuple[str, ...]:
    """Options a preset may set: those left unset (``None``) by default."""
    return tuple(f.name for f in dataclasses.fields(SFTConfig) if f.default is None)


def preset_values(name: str) -> dict[str, Any]:
    """A shipped preset by name, or a YAML file; it may set only :func:`preset_fields`."""
    allowed = preset_fields()
    return load_preset(
        name, PRESETS_DIR, lambda values, where: check_keys(values, allowed, where, "a preset cannot set it")
    )


def apply_preset(config: SFTConfig) -> SFTConfig:
    """``config`` with every unset hyperparameter filled from its preset, then the default preset."""
    given = {name: value for name, value in dataclasses.asdict(config).items() if value is not None}
    layered = {**preset_values(DEFAULT_PRESET), **preset_values(config.preset), **given}
    resolved = build(type(config), layered, f"preset '{config.preset}'")
    missing = [name for name in preset_fields() if getattr(resolved, name) is None]
    if missing:
        raise ValueError(f"the default preset does not set {', '.join(missing)}")
    return resolved
