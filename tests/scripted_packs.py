"""Transition packs recorded on the scripted backend, shared by the replay, optimum and bench tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from teams_env.recorder import record
from teams_env.scripted import ScriptedBackend, novelty_score


def record_novelty_pack(tmp_path_factory: pytest.TempPathFactory, texts: tuple[str, ...]) -> Path:
    """A depth-3 pack of ``texts`` on the scripted backend whose reviewer rewards an action only the
    first time an episode takes it: the optimum (3 per episode) beats uniform actions."""
    seeds = tmp_path_factory.mktemp("seeds") / "seeds.jsonl"
    seeds.write_text("".join(f'{{"instruction": "{text}"}}\n' for text in texts), encoding="utf-8")
    return record(
        tmp_path_factory.mktemp("pack") / "pack",
        depth=3,
        progress=False,
        expert=ScriptedBackend(score=novelty_score),
        encoder="hashing",
        cache=None,
        seeds=str(seeds),
        review_method="likelihood",
        reviewer_threshold=0.5,
    )
