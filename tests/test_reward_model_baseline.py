"""The ``reward-model`` baseline: its documented features, a fit on the real small pack that ranks
rewrites better than chance, and greedy episodes that skip what failed when verdicts are observed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from teams_env.replay.env import TeaMsInstructReplayEnv
from teams_env.roc import roc_auc
from teams_rl.agents.baselines.registry import make_baseline
from teams_rl.agents.baselines.reward_model import FEATURES, _rows, fit_reward_model, instruction_features
from teams_rl.agents.episodes import play_episodes, policy_actor

SMALL_PACK = Path(__file__).parent / "data" / "packs" / "small"


def test_the_features_say_what_the_instruction_holds():
    def named(text: str, depth: float = 0.0) -> dict[str, float]:
        return dict(zip(FEATURES, instruction_features(text, depth)))

    plain = named("Write a haiku about rain.", 0.5)
    assert plain["words"] == 5 / 200 and plain["depth"] == 0.5
    assert sum(plain[name] for name in FEATURES[2:]) == 0
    assert named("Fix this:\n\n```python\ndef f(): pass\n```")["code"] == 1
    assert named("Sum the column.\n\n| a | b |\n|---|---|\n| 1 | 2 |")["table"] == 1
    assert named('Parse {"name": "x"} into a record.')["json"] == 1
    assert named("Why is the sky blue?")["question"] == 1
    assert named("Sort these.\n\n3, 1, 2")["input"] == 1
    assert named("Plan a trip:\n1. book\n2. pack")["list"] == 1
    assert named("word " * 500)["words"] == 1


def test_the_fit_ranks_rewarded_rewrites_above_the_rest():
    env = TeaMsInstructReplayEnv(
        pack=SMALL_PACK, seeds="train", action_type="discrete", observation="last_action"
    )
    model = fit_reward_model(env)
    features, actions, labels, _ = _rows(env)
    scores = np.array([model.scores(row[None])[action] for row, action in zip(features, actions)])
    assert 0 < labels.mean() < 1
    assert roc_auc(scores[labels == 1], scores[labels == 0]) > 0.6


def test_greedy_episodes_skip_what_failed_when_they_see_verdicts():
    env = TeaMsInstructReplayEnv(
        pack=SMALL_PACK, seeds="all", action_type="discrete", observation="last_action", observe_verdicts=True
    )
    episodes = play_episodes(env, policy_actor(make_baseline("reward-model", env)))
    assert len(episodes) == len(env.seed_ids)
    assert any(info["reward"] <= 0 for episode in episodes for info in episode["infos"][:-1])  # not vacuous
    for episode in episodes:
        for before, after in zip(episode["infos"], episode["infos"][1:]):
            if before["reward"] <= 0:  # a failed step: the next one is another action
                assert after["action"] != before["action"]
