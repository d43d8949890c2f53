"""Import paths from before the layout of subpackages by concern keep working: importing
``teams_env.reviewer`` gives ``teams_env.reward.reviewer`` itself (one module, not a copy) with a
``DeprecationWarning`` naming the new path. A module that was split has no single new home, so its
old path fails with one line saying where its parts went."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED = {
    "teams_env.env_core": "teams_env.base_env",
    "teams_env.action_space": "teams_env.action_codec",
    "teams_env.config": "teams_env.env_config",
    "teams_env.scripted": "teams_env.llm.scripted",
    "teams_env.cache": "teams_env.llm.cache",
    "teams_env.accounting": "teams_env.llm.accounting",
    "teams_env.reviewer": "teams_env.reward.reviewer",
    "teams_env.review_head": "teams_env.reward.review_head",
    "teams_env.validity": "teams_env.reward.validity",
    "teams_env.junk": "teams_env.reward.junk_rules",
    "teams_env.elimination": "teams_env.reward.elimination",
    "teams_env.pack": "teams_env.replay.pack",
    "teams_env.pack_embeddings": "teams_env.replay.embeddings",
    "teams_env.recorder": "teams_env.replay.recording",
    "teams_env.rewards": "teams_env.replay.rewards",
    "teams_env.optimum": "teams_env.replay.optimum",
}
"""Old module path -> the module that now holds all of it."""

SPLIT = {
    "teams_env.configuration": "option dataclasses and YAML are in teams_env.options, command-line "
    "flags in teams_rl.flags",
    "teams_env.reviewer_bench": "the reviewer benchmark is a tool now: teams_rl.reviewer_bench",
}
"""Old module path -> where its parts went."""


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(f"{spec.name} moved to {self.new}", DeprecationWarning, stacklevel=2)
        return importlib.import_module(self.new)  # its own name, spec and attributes are kept

    def exec_module(self, module: ModuleType) -> None:
        pass


class _MovedModules(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in SPLIT:
            raise ModuleNotFoundError(f"{fullname} was split: {SPLIT[fullname]}", name=fullname)
        if fullname in MOVED:
            return importlib.machinery.ModuleSpec(fullname, _Alias(MOVED[fullname]))
        return None


def install() -> None:
    """Answer the old paths (once per process)."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())
