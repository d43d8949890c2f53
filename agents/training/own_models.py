"""The checkpoints this machine's own ``teams-rl train`` wrote, by content hash.

SB3 checkpoints hold pickled Python objects, so loading one from elsewhere deserves a warning. A
checkpoint whose SHA-256 is in this list was written here by the user's own training, so loading
it says nothing. The list lives beside the LLM cache (``$TEAMS_RL_CACHE``'s folder, else
``~/.cache/teams-rl``); a run directory copied from elsewhere is not in it, whatever it contains.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from teams_env.llm.cache import default_cache_path

OWN_MODELS_FILE = "own-models.txt"


def _registry() -> Path:
    return default_cache_path().parent / OWN_MODELS_FILE


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remember(models: Iterable[Path]) -> None:
    """Add ``models`` (files this process just wrote) to the list; a folder that cannot be written
    only means their loading will warn."""
    registry = _registry()
    known = _known(registry)
    new = {file_sha256(path) for path in models if path.is_file()} - known
    if not new:
        return
    lines = "".join(f"{digest}\n" for digest in sorted(new))
    try:
        registry.parent.mkdir(parents=True, exist_ok=True)
        with registry.open("a", encoding="utf-8") as handle:
            handle.write(lines)
    except OSError:
        pass


def _known(registry: Path) -> set[str]:
    try:
        return set(registry.read_text(encoding="utf-8").split())
    except OSError:
        return set()


def is_own(model: Path) -> bool:
    """Whether ``model`` is byte for byte a checkpoint this machine's training wrote."""
    known = _known(_registry())
    return bool(known) and file_sha256(model) in known
