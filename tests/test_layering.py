"""The layout's rules, checked on the source (a lazy import inside a function counts too):

- ``teams_env`` (the Gymnasium package users import) imports nothing of ``teams_rl`` or the
  benchmarks, and no argparse, matplotlib or training library;
- ``teams_rl.agents`` imports neither ``teams_rl.finetune`` nor the command-line tools, and
  ``teams_rl.finetune`` neither ``teams_rl.agents`` nor the tools;
- no import circle anywhere, even through a function-level import;
- the wheel lists every package folder, and installs only two import names, neither of which a
  common package also uses (a top-level ``agents`` is the OpenAI Agents SDK's)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {
    "teams_env": "teams_env",
    "teams_rl": "teams_rl",
    "teams_rl.agents": "agents",
    "teams_rl.finetune": "finetune",
}
"""Import prefix -> the folder that holds it (agents/ and finetune/ install inside teams_rl)."""

TOOLS = "teams_rl"
BELOW = {
    "teams_env": ("teams_env",),
    "teams_rl.agents": ("teams_env", "teams_rl.agents"),
    "teams_rl.finetune": ("teams_env", "teams_rl.agents", "teams_rl.finetune"),
}
"""Per layer, the project code it may import: itself and the layers below it (the tools, the rest
of ``teams_rl``, may import anything)."""
NOT_IN_THE_ENV = ("argparse", "matplotlib", "sb3_contrib", "trl", "peft", "tensorboard")
"""What users import stays free of command-line parsing, plotting and training libraries."""
PROJECT = ("teams_env", "teams_rl", "benchmarks")

CLAIMED_ELSEWHERE = {"agents", "finetune", "config", "utils", "tests", "benchmarks", "examples"}
"""Top-level import names that other common packages install (or that say nothing)."""


def modules() -> dict[str, Path]:
    """Every module of the project by its import name."""
    found = {}
    for prefix, folder in FOLDERS.items():
        for file in (ROOT / folder).rglob("*.py"):
            parts = [
                part for part in file.relative_to(ROOT / folder).with_suffix("").parts if part != "__init__"
            ]
            if prefix == TOOLS and parts and parts[0] in ("agents", "finetune"):
                continue
            found[".".join([prefix, *parts])] = file
    return found


def imported_names(file: Path, package: str) -> set[str]:
    """The dotted name of every import in ``file`` (``from a import b`` gives ``a`` and ``a.b``);
    relative imports are resolved against ``package``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def layer(name: str) -> str:
    """The layer a module belongs to: ``teams_env``, ``teams_rl.agents``, ``teams_rl.finetune``,
    ``benchmarks`` or the tools (the rest of ``teams_rl``)."""
    if _within(name, "benchmarks"):
        return "benchmarks"
    return max((prefix for prefix in BELOW if _within(name, prefix)), key=len, default=TOOLS)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package's ``__init__`` when a name is imported
    from it), without the implicit import of a module's parents."""
    known = modules()

    def module_of(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, file in known.items():
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        targets = {module_of(imported) for imported in imported_names(file, package)}
        graph[name] = {target for target in targets if target and target != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", sorted(BELOW))
def test_a_layer_imports_nothing_above_it(package):
    offending = {}
    for name, file in modules().items():
        if layer(name) != package:
            continue
        imports = imported_names(file, name if file.name == "__init__.py" else name.rpartition(".")[0])
        bad = sorted(
            imported
            for imported in imports
            if (any(_within(imported, top) for top in PROJECT) and layer(imported) not in BELOW[package])
            or (package == "teams_env" and any(_within(imported, top) for top in NOT_IN_THE_ENV))
        )
        if bad:
            offending[str(file.relative_to(ROOT))] = bad
    assert not offending


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_the_checks_see_lazy_imports_and_circles(tmp_path):
    file = tmp_path / "lazy.py"
    file.write_text(
        "def f():\n    from teams_rl.agents.training.train import train\n    import teams_rl.cli\n"
    )
    assert {"teams_rl.agents.training.train", "teams_rl.cli"} <= imported_names(file, "x")
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_wheel_lists_every_package_folder():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folders = {name for name, file in modules().items() if file.name == "__init__.py"}
    assert set(setuptools["packages"]) == folders
    assert setuptools["package-dir"] == {"teams_rl.agents": "agents", "teams_rl.finetune": "finetune"}


def test_the_import_names_collide_with_no_common_package():
    """What ``pip install teams-rl`` puts on the path: two import names, so it installs and imports
    beside the OpenAI Agents SDK (whose top-level package is ``agents``)."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    top_level = {package.split(".")[0] for package in setuptools["packages"]}
    assert top_level == {"teams_env", "teams_rl"}
    assert not top_level & CLAIMED_ELSEWHERE
    import teams_rl.agents

    assert Path(teams_rl.agents.__file__).parent == ROOT / "agents"


def test_old_import_paths_keep_working_or_say_where_their_parts_went():
    import importlib
    import sys

    from teams_env.moved_modules import MOVED

    for old, new in MOVED.items():
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
            module = importlib.import_module(old)
        assert module is importlib.import_module(new)
    from teams_env.reviewer import Reviewer  # what a user may have written
    from teams_env.reward.reviewer import Reviewer as Now

    assert Reviewer is Now
    with pytest.raises(ModuleNotFoundError, match=r"teams_env\.configuration was split: .*teams_rl\.flags"):
        importlib.import_module("teams_env.configuration")
