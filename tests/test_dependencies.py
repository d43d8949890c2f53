"""Dependency floors are versions the suite runs on, and code that needs a newer release than the one
installed says so in one line when it is imported."""

from __future__ import annotations

import importlib
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from teams_env import dependencies
from teams_env.dependencies import LLAMA_CPP_PYTHON_FLOOR, TRANSFORMERS_FLOOR, require

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def floors() -> dict[str, str]:
    """The lower bound of every requirement in pyproject.toml, by distribution name."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    found: dict[str, str] = {}
    for line in lines:
        requirement = Requirement(line)
        if requirement.name == "teams-rl":
            continue
        bounds = [spec.version for spec in requirement.specifier if spec.operator in (">=", "==")]
        assert bounds, f"{line}: no floor"
        found[requirement.name.lower()] = bounds[0]
    return found


def test_every_floor_is_at_most_the_installed_version():
    # A floor above what the suite runs on was never tested; the floors are set to tested versions.
    for name, floor in floors().items():
        installed = Version(metadata.version(name)).release
        assert installed >= Version(floor).release, f"{name}: floor {floor}, installed {installed}"


def test_import_time_checks_use_the_declared_floors():
    assert floors()["llama-cpp-python"] == LLAMA_CPP_PYTHON_FLOOR
    assert floors()["transformers"] == TRANSFORMERS_FLOOR


def _installed(monkeypatch, versions: dict[str, str]) -> None:
    real = metadata.version
    monkeypatch.setattr(dependencies.metadata, "version", lambda name: versions.get(name) or real(name))


@pytest.mark.parametrize(
    ("module", "distribution", "old", "floor", "needed_by"),
    [
        (
            "teams_env.llm.llamacpp",
            "llama-cpp-python",
            "0.3.2",
            LLAMA_CPP_PYTHON_FLOOR,
            "the llamacpp backend",
        ),
        ("teams_env.llm.hf", "transformers", "4.48.0", TRANSFORMERS_FLOOR, "the hf backend"),
        ("teams_rl.finetune.models", "transformers", "4.57.1", TRANSFORMERS_FLOOR, "fine-tuning"),
    ],
)
def test_an_older_release_is_a_one_line_import_error(
    monkeypatch, module, distribution, old, floor, needed_by
):
    _installed(monkeypatch, {distribution: old})
    monkeypatch.delitem(sys.modules, module, raising=False)  # restored after the test
    with pytest.raises(ImportError) as error:
        importlib.import_module(module)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(needed_by)
    assert f"needs {distribution}>={floor}, but {old} is installed" in message


def test_the_floor_itself_and_local_builds_pass(monkeypatch):
    _installed(monkeypatch, {"llama-cpp-python": LLAMA_CPP_PYTHON_FLOOR, "torch": "2.13.0+cpu"})
    require("llama-cpp-python", LLAMA_CPP_PYTHON_FLOOR, "x")
    require("torch", "2.13", "x")  # 2.13 and 2.13.0 are one release
    require("not-a-distribution-here", "1.0", "x")  # a missing one is left to its import
    with pytest.raises(ImportError, match=r"^x needs torch>=2.14, but 2.13.0\+cpu is installed"):
        require("torch", "2.14", "x")
