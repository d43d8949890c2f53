"""SFT hyperparameter presets: YAML files that fill the options a user did not give.

Precedence, lowest first: the ``default`` preset, the chosen preset, ``--config`` YAML, flags. The
preset-able options are the ones whose dataclass default is ``None`` (unset).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from finetune.config import SFTConfig
from teams_env.configuration import build, load_yaml

DEFAULT_PRESET = "default"
PRESETS_DIR = Path(__file__).with_name("presets")


def preset_fields() -> tuple[str, ...]:
    """Options a preset may set: those left unset (``None``) by default."""
    return tuple(f.name for f in dataclasses.fields(SFTConfig) if f.default is None)


def shipped_presets() -> list[str]:
    return sorted(path.stem for path in PRESETS_DIR.glob("*.yml"))


def preset_file(name: str) -> Path:
    """The YAML file of a shipped preset name, or ``name`` itself when it is a file."""
    shipped = PRESETS_DIR / f"{name}.yml"
    if shipped.is_file():
        return shipped
    path = Path(name).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"preset '{name}' is neither a shipped preset ({', '.join(shipped_presets())}) nor a YAML file"
        )
    return path


def preset_values(name: str) -> dict[str, Any]:
    path = preset_file(name)
    values = load_yaml(path)
    allowed = preset_fields()
    for key in values:
        if str(key).replace("-", "_") not in allowed:
            raise ValueError(
                f"{path}: key '{key}' cannot be set by a preset (preset keys: {', '.join(allowed)})"
            )
    return values


def apply_preset(config: SFTConfig) -> SFTConfig:
    """``config`` with every unset hyperparameter filled from its preset, then the default preset."""
    given = {name: value for name, value in dataclasses.asdict(config).items() if value is not None}
    layered = {**preset_values(DEFAULT_PRESET), **preset_values(config.preset), **given}
    resolved = build(SFTConfig, layered, f"preset '{config.preset}'")
    missing = [name for name in preset_fields() if getattr(resolved, name) is None]
    if missing:
        raise ValueError(f"the default preset does not set {', '.join(missing)}")
    return resolved
