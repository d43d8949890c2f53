"""Transition packs recorded on the scripted backend, shared by the replay, optimum and bench tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from teams_env.llm.base import Conversation
from teams_env.llm.scripted import ACTION_CLAUSES, ScoreFn, ScriptedBackend, novelty_score
from teams_env.replay.recording import record
from teams_env.reward.reviewer import EQUAL, NOT_EQUAL, parse_review_conversation


def _record_scripted(
    tmp_path_factory: pytest.TempPathFactory, texts: Sequence[str], score: ScoreFn, **options: Any
) -> Path:
    """A pack of ``texts`` recorded on the scripted backend, judged by ``score``'s label likelihoods."""
    seeds = tmp_path_factory.mktemp("seeds") / "seeds.jsonl"
    seeds.write_text("".join(f'{{"instruction": "{text}"}}\n' for text in texts), encoding="utf-8")
    return record(
        tmp_path_factory.mktemp("pack") / "pack",
        progress=False,
        expert=ScriptedBackend(score=score),
        encoder="hashing",
        cache=None,
        seeds=str(seeds),
        review_method="likelihood",
        reviewer_threshold=0.5,
        **options,
    )


def record_novelty_pack(tmp_path_factory: pytest.TempPathFactory, texts: tuple[str, ...]) -> Path:
    """A depth-3 pack of ``texts`` on the scripted backend whose reviewer rewards an action only the
    first time an episode takes it: the optimum (3 per episode) beats uniform actions."""
    return _record_scripted(tmp_path_factory, texts, novelty_score, depth=3)


TOPIC_ACTIONS = {"recipe": "concretizing", "planet": "deepening"}
"""The one action the text-dependent reviewer rewards, by the topic word of the instruction."""


def topic_score(conversation: Conversation, choices: Sequence[str]) -> list[float]:
    """A reviewer whose best action depends on the seed's text: "Not Equal" (0.9 vs 0.1) exactly when
    the clause just appended is the one of the instruction's topic (``TOPIC_ACTIONS``), every time."""
    pair = parse_review_conversation(conversation)
    if pair is None:
        raise ValueError("topic_score only answers review conversations")
    before, after = pair
    wanted = next((action for word, action in TOPIC_ACTIONS.items() if word in before.lower()), None)
    rewarded = wanted is not None and after.endswith(ACTION_CLAUSES[wanted])
    preferred = NOT_EQUAL if rewarded else EQUAL
    return [math.log(0.9) if choice == preferred else math.log(0.1) for choice in choices]


def topic_texts(count: int = 16) -> tuple[str, ...]:
    """Seeds alternating between the two topics of :func:`topic_score` (recipes, planets)."""
    dishes = ("lentil", "tomato", "pumpkin", "onion", "leek", "carrot", "barley", "miso")
    planets = ("Mars", "Venus", "Jupiter", "Saturn", "Mercury", "Neptune", "Uranus", "Pluto")
    texts = []
    for index in range(count):
        if index % 2 == 0:
            texts.append(f"Write a recipe for {dishes[index // 2 % len(dishes)]} soup.")
        else:
            texts.append(f"Describe the planet {planets[index // 2 % len(planets)]} and its orbit.")
    return tuple(texts)


def record_topic_pack(tmp_path_factory: pytest.TempPathFactory, depth: int = 2, **options: Any) -> Path:
    """A pack of :func:`topic_texts` (half of them held out) whose best action depends on the text:
    ``concretizing`` on recipes, ``deepening`` on planets, so the optimum is ``depth`` per episode
    and a text-blind policy gets at most that on one topic. ``options`` go to the recorder."""
    return _record_scripted(tmp_path_factory, topic_texts(), topic_score, depth=depth, heldout=0.5, **options)
