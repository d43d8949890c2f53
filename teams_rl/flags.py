"""Command-line flags from the option dataclasses (:mod:`teams_env.options`): one ``--flag`` per field,
and the YAML ``--config`` file under them. Precedence: dataclass default < YAML file < command line."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import Any, TypeVar, get_origin

from teams_env.options import COMMAND_LINE, base_type, construct, field_types, load_yaml

Config = TypeVar("Config")

logger = logging.getLogger(__name__)


class _DeprecatedFlag(argparse.Action):
    """A former flag name: sets the option under its new name, with a warning."""

    def __init__(self, *args: Any, new_flag: str, **kwargs: Any) -> None:
        self.new_flag = new_flag
        super().__init__(*args, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: Any = None,
    ) -> None:
        logger.warning("%s is deprecated; use %s", option_string, self.new_flag)
        setattr(namespace, self.dest, values)


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One ``--flag`` per field (underscores become dashes); defaults are left to :func:`resolve`."""
    hints = field_types(cls)
    for item in dataclasses.fields(cls):
        flag = "--" + item.name.replace("_", "-")
        kind, _ = base_type(hints[item.name])
        default = item.default if item.default is not dataclasses.MISSING else item.default_factory()  # type: ignore[misc]
        help_text = f"{item.metadata.get('help', '')} (default: {default!r})"
        if kind is bool:
            parser.add_argument(
                flag,
                dest=item.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            metavar = "A,B,..." if get_origin(kind) in (list, tuple) else item.name.upper()
            parser.add_argument(
                flag, dest=item.name, default=argparse.SUPPRESS, metavar=metavar, help=help_text
            )
            for old in item.metadata.get("deprecated", ()):
                parser.add_argument(
                    "--" + old.replace("_", "-"),
                    dest=item.name,
                    default=argparse.SUPPRESS,
                    metavar=metavar,
                    action=_DeprecatedFlag,
                    new_flag=flag,
                    help=f"deprecated: use {flag}",
                )


def resolve(cls: type[Config], args: argparse.Namespace, config_path: str | None = None) -> Config:
    """Defaults, then the YAML file, then the flags given on the command line."""
    values: dict[str, tuple[Any, str]] = {}
    if config_path:
        for key, value in load_yaml(config_path).items():
            values[str(key).replace("-", "_")] = (value, f"{config_path}: key '{key}'")
    field_names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key, value in vars(args).items():
        if key in field_names:
            values[key] = (value, "--" + key.replace("_", "-"))
    return construct(cls, values, config_path or COMMAND_LINE)
