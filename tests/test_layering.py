"""The layering rule: ``teams_env`` (the Gymnasium package users import) imports neither ``agents``,
``finetune``, the ``teams_rl`` command line nor the benchmarks; ``agents`` does not import
``finetune``. Checked on the source, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "teams_env": {"agents", "finetune", "teams_rl", "benchmarks"},
    "agents": {"finetune", "teams_rl"},
}


def imported_packages(file: Path) -> set[str]:
    """Top-level package of every ``import`` and absolute ``from ... import`` in ``file``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_no_layer_above_it(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    offending = {
        str(file.relative_to(ROOT)): sorted(imported_packages(file) & FORBIDDEN[package]) for file in files
    }
    assert not {file: names for file, names in offending.items() if names}


def test_the_check_sees_lazy_imports(tmp_path):
    file = tmp_path / "lazy.py"
    file.write_text(
        "def f():\n    from agents.train import train\n    import teams_rl.cli\n", encoding="utf-8"
    )
    assert imported_packages(file) == {"agents", "teams_rl"}
