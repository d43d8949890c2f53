"""The README stays short and points to pages that exist; the docs build with ``mkdocs build
--strict``, so a broken link, a missing page or an unknown anchor fails here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#]+)(#[^)]*)?\)")


def test_the_readme_is_at_most_200_lines():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


def test_every_relative_link_of_the_readme_exists():
    targets = [link for link, _ in LINK.findall((ROOT / "README.md").read_text(encoding="utf-8"))]
    local = [link for link in targets if "://" not in link]
    assert local and [link for link in local if not (ROOT / link).exists()] == []


def test_the_readme_maps_every_subpackage():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    packages = {"teams_env", "teams_rl", "teams_rl.agents", "teams_rl.finetune"}
    packages |= {
        f"teams_env.{p.name}" for p in (ROOT / "teams_env").iterdir() if (p / "__init__.py").is_file()
    }
    packages |= {
        f"teams_rl.agents.{p.name}" for p in (ROOT / "agents").iterdir() if (p / "__init__.py").is_file()
    }
    assert [name for name in sorted(packages) if f"| `{name}`" not in readme] == []


def test_the_docs_build_strictly(tmp_path):
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("mkdocs is not installed: pip install -e '.[test]'")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    assert (tmp_path / "site" / "layout" / "index.html").is_file()
