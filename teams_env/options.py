"""Options as dataclasses with help text, read from YAML (TRL's pattern); the command-line flags that
override them are built in :mod:`teams_rl.flags`. One implementation for every command.

Each field's ``metadata["help"]`` is its help text. Precedence: dataclass default < YAML file <
command line. An unknown YAML key, or a value of the wrong type, is a one-line error naming the file
and the key.

"Not set" is ``None`` (``null`` in YAML, or the key left out): an option typed ``X | None`` whose
default is ``None`` means "not given; something else decides" and its help says what (the env's
``reviewer``: the expert's; the pipeline's shared options: the preset's). ``"auto"`` is not "not
set" but a value with a rule of its own (e.g. ``cache: auto`` is the default cache file).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import operator
import re
import types
import typing
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

import yaml

Config = TypeVar("Config")

logger = logging.getLogger(__name__)


COMMAND_LINE = "command line"
"""The source of options given as flags."""


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message names where."""


def option(default: Any, help: str, *, deprecated: tuple[str, ...] = (), **kwargs: Any) -> Any:
    """A dataclass field with help text (``default`` may be a list; it is copied per instance).

    ``deprecated``: former names of the option, still accepted as YAML keys and ``--flags`` with a
    warning that names the new one."""
    metadata = {"help": help, "deprecated": tuple(deprecated)}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def deprecated_names(cls: type) -> dict[str, str]:
    """Each former name of an option -> its name now."""
    return {
        old: item.name
        for item in dataclasses.fields(cls)  # type: ignore[arg-type]
        for old in item.metadata.get("deprecated", ())
    }


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def base_type(annotation: Any) -> tuple[Any, bool]:
    """(the type without Optional, whether None is allowed); a union of several types stays one."""
    if _is_union(annotation):
        args = [a for a in get_args(annotation) if a is not type(None)]
        base = functools.reduce(operator.or_, args)  # one type, or the union of several
        return base, len(args) < len(get_args(annotation))
    return annotation, False


def field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def numbers_from_yaml(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string; numbers written that way become numbers."""
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        return value
    if isinstance(value, Mapping):
        return {key: numbers_from_yaml(item) for key, item in value.items()}
    if isinstance(value, list):
        return [numbers_from_yaml(item) for item in value]
    return value


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets, so ``net_arch=[32,32]`` stays one item."""
    items, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{("
        depth -= char in "]})"
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [item.strip() for item in items if item.strip()]


def _set_dotted(target: dict[str, Any], key: str, value: Any, where: str) -> None:
    *parents, leaf = key.split(".")
    for parent in parents:
        child = target.setdefault(parent, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: '{parent}' is not a mapping, so '{key}' cannot be set")
        target = child
    target[leaf] = value


def parse_mapping(text: str, where: str = "value") -> dict[str, Any]:
    """``KEY=VALUE,...`` (dotted keys reach into mappings, values read as YAML) or a YAML mapping
    ``{...}``, as a nested dictionary; ``where`` names the flag or key in error messages."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"{where}: invalid YAML mapping ({error})".splitlines()[0]) from error
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping, got {text!r}")
        return numbers_from_yaml(data)
    result: dict[str, Any] = {}
    for item in _split_top_level(text):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{where}: expected KEY=VALUE, got '{item}'")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw.strip()
        _set_dotted(result, key.strip(), numbers_from_yaml(value), where)
    return result


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    kind, nullable = base_type(annotation)
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"{where}: must not be empty")
    if _is_union(kind):  # e.g. ``float | str``: the first member that takes the value, in order
        members = get_args(kind)
        for member in members[:-1]:
            try:
                return _coerce(value, member, where)
            except ConfigError:
                pass
        return _coerce(value, members[-1], where)
    origin = get_origin(kind)
    if origin in (list, tuple):
        (item,) = get_args(kind)[:1] or (str,)
        items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{where}: must be a list, got {value!r}")
        return [_coerce(v, item, where) for v in items]
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0", "on", "off"}:
            return value.lower() in {"true", "yes", "1", "on"}
        raise ConfigError(f"{where}: must be true or false, got {value!r}")
    if kind in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: must be a number, got {value!r}")
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where}: must be {'an integer' if kind is int else 'a number'}, got {value!r}"
            ) from None
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: must be an integer, got {value!r}")
        return number
    if kind is dict or get_origin(kind) is dict:
        if isinstance(value, str):  # from the command line
            return parse_mapping(value, where)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: must be a mapping, got {value!r}")
        return numbers_from_yaml(value)
    if kind is typing.Any:
        return value
    if isinstance(value, (dict, list)):
        raise ConfigError(f"{where}: must be a single value, got {value!r}")
    return str(value)


def load_yaml(path: str | Path) -> dict[str, Any]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{file}: config file not found")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file}{line}: invalid YAML ({getattr(error, 'problem', error)})") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{file}: not UTF-8 text") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of option: value, got {type(data).__name__}")
    return data


def check_keys(
    values: Mapping[str, Any], allowed: Collection[str], where: str, problem: str = "unknown key"
) -> None:
    """A one-line error naming ``where`` and the first key of ``values`` not in ``allowed``."""
    for key in values:
        if str(key).replace("-", "_") not in allowed:
            raise ConfigError(f"{where}: key '{key}': {problem} (known keys: {', '.join(sorted(allowed))})")


def load_preset(
    name: str, directory: Path, check: Callable[[dict[str, Any], str], None] | None = None
) -> dict[str, Any]:
    """A preset: the shipped ``directory/NAME.yml``, else ``name`` as a YAML file, as a mapping that
    ``check(values, file)`` accepts (it raises a one-line error naming the file and key)."""
    shipped = directory / f"{name}.yml"
    path = shipped if shipped.is_file() else Path(name).expanduser()
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in directory.glob("*.yml")))
        raise FileNotFoundError(f"preset '{name}' is neither a shipped preset ({names}) nor a YAML file")
    values = load_yaml(path)
    if check is not None:
        check(values, str(path))
    return values


def construct(cls: type[Config], values: dict[str, tuple[Any, str]], source: str) -> Config:
    """``values`` maps a key to (value, where it came from) for error messages."""
    hints = field_types(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for old, new in deprecated_names(cls).items():
        if old in values:
            value, where = values.pop(old)
            if new in values:
                raise ConfigError(f"{where}: a former name of '{new}', which is given too; keep only '{new}'")
            logger.warning("%s: deprecated; use '%s'", where, new)
            values[new] = (value, where)
    for key, (_, where) in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key (known keys: {', '.join(sorted(known))})")
    config = cls(**{k: _coerce(v, hints[k], where) for k, (v, where) in values.items()})
    validate = getattr(config, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as error:
            if source == COMMAND_LINE:  # the options as the user typed them
                raise ConfigError(as_flags(str(error), known)) from error
            raise ConfigError(f"{source}: {error}") from error
    return config


def as_flags(message: str, names: Collection[str]) -> str:
    """``message`` with the option names it speaks of written as flags (``n_envs`` -> ``--n-envs``):
    a name with an underscore, or one followed by "must"; other words stay prose."""

    def flag(match: re.Match[str]) -> str:
        name = match.group(0)
        said = "_" in name or message[match.end() :].startswith(" must")
        return "--" + name.replace("_", "-") if name in names and said else name

    return re.sub(r"(?<![\w'-])[a-z][a-z0-9_]*(?![\w'-])", flag, message)


def build(cls: type[Config], values: dict[str, Any], source: str) -> Config:
    """A ``cls`` from a mapping (a YAML file, a preset), checking keys and types."""
    return construct(
        cls, {str(k).replace("-", "_"): (v, f"{source}: key '{k}'") for k, v in values.items()}, source
    )


def dump(config: Any) -> dict[str, Any]:
    """A config as plain data (for run directories: what ran, reproducibly)."""
    return dataclasses.asdict(config)
