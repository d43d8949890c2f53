"""The review head's sentence-encoder features: their computation, the head file that names them,
the reviewer computing the same ones at judge time, the identity packs record; and, with the real
embedded model, the bundled head keeping junk data out of the reward on the held-out splits."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from teams_env.encoder import HashingEncoder
from teams_env.llm.scripted import ScriptedBackend
from teams_env.llm.service import LLMService
from teams_env.reward.review_head import (
    DEFAULT_ENCODER_FEATURES,
    HEAD_FORMAT,
    HIDDEN,
    ReviewHead,
    encoder_features,
)
from teams_env.reward.reviewer import Reviewer, head_judgements
from teams_env.roc import roc_auc
from teams_rl.cli import main
from teams_rl.review_head_training import train_review_head
from teams_rl.reviewer_bench import INPUT_CATEGORIES, INPUT_TARGETS, evaluate_judgements, load_benches

REQUEST = "What causes inflation in an economy?"
COHERENT = (
    "What causes inflation in an economy? Use the table below.\n\n| year | money supply growth | CPI |\n"
    "|---|---|---|\n| 2020 | 12% | 1.2% |\n| 2021 | 13% | 4.7% |"
)
ECHO = (
    "What causes inflation in an economy? Use the code below.\n\n```python\ndef inflation(economy):\n"
    "    causes = economy.inflation + 'causes'\n    return causes\n```"
)
UNRELATED = (
    "What causes inflation in an economy? Use the table below.\n\n| dog breed | weight |\n|---|---|\n"
    "| beagle | 10 |\n| pug | 7 |"
)


def features(pairs, names=DEFAULT_ENCODER_FEATURES, encoder=None):
    return encoder_features(encoder or HashingEncoder(64), pairs, names)


def test_encoder_features_of_copies_one_liners_and_data():
    names = list(DEFAULT_ENCODER_FEATURES)
    same, terse, coherent, echo, unrelated = features(
        [
            (REQUEST, REQUEST),
            (REQUEST, REQUEST[:-1] + " in 2022?"),
            (REQUEST, COHERENT),
            (REQUEST, ECHO),
            (REQUEST, UNRELATED),
        ]
    )
    # No distance, same length, no data, nothing added or dropped; a copy keeps its start.
    assert same[names.index("keeps_start")] == 1
    assert np.allclose(np.delete(same, names.index("keeps_start")), 0.0, atol=1e-6)
    assert terse[names.index("length_ratio")] > 0 and terse[names.index("has_data")] == 0
    assert terse[names.index("data_fit")] == terse[names.index("data_echo")] == 0
    for row in (coherent, echo, unrelated):
        assert row[names.index("has_data")] == 1
        assert row[names.index("data_fit_sq")] == pytest.approx(row[names.index("data_fit")] ** 2)
    # Code spelled with the request's own words echoes it; a table of new facts does not.
    assert echo[names.index("data_echo")] > 0.5 > coherent[names.index("data_echo")]
    assert unrelated[names.index("data_echo")] == 0
    assert features([(REQUEST, COHERENT)], ()).shape == (1, 0)
    with pytest.raises(ValueError, match="unknown review head feature 'vibes'"):
        features([(REQUEST, COHERENT)], ("vibes",))


def test_word_features_count_what_a_rewrite_adds_drops_and_repeats():
    names = (
        "new_words",
        "new_share",
        "dropped_share",
        "repeated_share",
        "sentences_added",
        "digits_added",
        "keeps_start",
    )
    before = "Explain how tides work."
    (added, swapped, looped) = features(
        [
            (before, "Explain how tides work. Compare spring and neap tides with 2 examples."),
            (before, "Describe volcanoes."),
            (before, "Explain how tides work tides work tides work tides work tides work."),
        ],
        names,
    )
    row = dict(zip(names, added))
    # New: compare, spring, neap, example(s); nothing dropped; one sentence and one digit more.
    assert row["new_words"] == pytest.approx(np.log1p(4)) and row["dropped_share"] == 0
    assert row["sentences_added"] == 1 and row["digits_added"] == pytest.approx(np.log1p(1))
    assert row["keeps_start"] == 1 and row["repeated_share"] == 0
    row = dict(zip(names, swapped))
    assert row["new_share"] == pytest.approx(2 / 3) and row["dropped_share"] == pytest.approx(3 / 4)
    assert row["keeps_start"] == 0
    assert dict(zip(names, looped))["repeated_share"] > 0.5


def test_data_already_in_the_instruction_is_not_added_data():
    before = "Sum the numbers below.\n1\n2\n3"
    (row,) = features([(before, before.replace("Sum", "Add up"))], ("has_data", "data_echo"))
    assert row.tolist() == [0.0, 0.0]


def fitted_head(
    rng, *, extra_names=("distance", "data_echo"), encoder="hashing:64", components=0, model_id="m"
):
    """A head whose Not Equal label depends on the first encoder feature only."""
    states = rng.normal(size=(160, 8))
    extra = rng.normal(size=(160, len(extra_names)))
    labels = extra[:, 0] > 0 if extra_names else states[:, 0] > 0
    head = train_review_head(
        states,
        labels,
        states[:, 1] > -0.5,
        np.ones(160, bool),
        np.arange(160) // 4,
        model_id=model_id,
        l2=10.0,
        folds=4,
        extra=extra if extra_names else None,
        extra_names=extra_names,
        encoder=encoder if extra_names else "",
        components=components,
        extra_weight=5.0,
    )
    return head, states, extra, labels


def test_a_few_encoder_features_are_not_drowned_by_the_hidden_state(tmp_path):
    rng = np.random.default_rng(0)
    head, states, extra, labels = fitted_head(rng)
    assert head.features == (HIDDEN, "distance", "data_echo") and head.encoder == "hashing:64"
    assert head.training["not_equal"]["cv_auc"] > 0.95
    head.save(tmp_path / "head.json")
    data = json.loads((tmp_path / "head.json").read_text())
    assert data["format"] == HEAD_FORMAT == 3
    assert data["features"] == ["hidden", "distance", "data_echo"] and data["encoder"] == "hashing:64"
    loaded = ReviewHead.load(tmp_path / "head.json")
    p_ne, _ = loaded.predict(states, extra)
    assert roc_auc(p_ne[labels], p_ne[~labels]) > 0.99
    assert np.allclose(p_ne, head.predict(states, extra)[0], atol=1e-5)
    assert loaded.fingerprint == head.fingerprint
    with pytest.raises(ValueError, match="reads encoder features \\(distance, data_echo\\); none given"):
        loaded.predict(states)
    with pytest.raises(ValueError, match="encoder features of shape"):
        loaded.predict(states, extra[:, :1])
    with pytest.raises(ValueError, match="hidden states of size 8"):
        loaded.predict(states[:, :4], extra)


def test_principal_components_are_folded_back_into_weights_on_the_features():
    rng = np.random.default_rng(1)
    head, states, extra, labels = fitted_head(rng, components=3)
    assert len(head.not_equal.weights) == 8 + 2 + 1 and head.training["components"] == 3
    p_ne, _ = head.predict(states, extra)
    assert roc_auc(p_ne[labels], p_ne[~labels]) > 0.95


def test_the_fingerprint_changes_with_features_and_encoder():
    head, *_ = fitted_head(np.random.default_rng(2))
    assert dataclasses.replace(head, encoder="other").fingerprint != head.fingerprint
    assert dataclasses.replace(head, training={"x": 1}).fingerprint == head.fingerprint
    plain, *_ = fitted_head(np.random.default_rng(2), extra_names=())
    assert plain.features == (HIDDEN,) and plain.encoder == "" and plain.fingerprint != head.fingerprint


def test_format_1_heads_still_load_and_other_formats_are_refused(tmp_path):
    plain, states, *_ = fitted_head(np.random.default_rng(3), extra_names=())
    plain.save(tmp_path / "head.json")
    data = json.loads((tmp_path / "head.json").read_text())
    del data["features"], data["encoder"]
    (tmp_path / "v1.json").write_text(json.dumps({**data, "format": 1}))
    old = ReviewHead.load(tmp_path / "v1.json")
    assert old.features == (HIDDEN,) and old.encoder == ""
    assert np.allclose(old.predict(states)[0], plain.predict(states)[0], atol=1e-5)
    (tmp_path / "v4.json").write_text(json.dumps({**data, "format": 4}))
    with pytest.raises(ValueError, match=r"unsupported format 4 .*retrain it with teams-rl train-reviewer"):
        ReviewHead.load(tmp_path / "v4.json")
    (tmp_path / "bad.json").write_text(json.dumps({**data, "format": 2, "features": ["hidden", "vibes"]}))
    with pytest.raises(ValueError, match="not a review head \\(unknown feature 'vibes'"):
        ReviewHead.load(tmp_path / "bad.json")


class StatesBackend(ScriptedBackend):
    """A scripted model with hidden states: hashed words of the conversation's last message."""

    def last_hidden_states(self, conversations):
        return list(HashingEncoder(8).encode([c[-1]["content"] for c in conversations]))


PAIRS = [(REQUEST, COHERENT), (REQUEST, ECHO), (REQUEST, UNRELATED), (REQUEST, REQUEST[:-1] + " in Japan?")]


def head_for(backend, encoder_name):
    head, *_ = fitted_head(np.random.default_rng(4), encoder=encoder_name, model_id=backend.model_id)
    return head


def test_the_reviewer_computes_the_heads_features_at_judge_time():
    backend = StatesBackend()
    head = head_for(backend, "hashing:32")
    given = HashingEncoder(32)
    reviewer = Reviewer(LLMService(backend, "reviewer"), method="head", head=head, encoder=given)
    assert reviewer.method == "head"
    judged = reviewer.judge(PAIRS)
    states = backend.last_hidden_states([[{"role": "assistant", "content": b}] for _, b in PAIRS])
    expected = head_judgements(head, states, encoder_features(given, PAIRS, head.encoder_feature_names))
    assert [j.p_not_equal for j in judged] == pytest.approx([j.p_not_equal for j in expected])
    assert all(j.p_valid is not None and j.method == "head" for j in judged)
    # The env's encoder is used only where it is the head's; otherwise the head gets its own.
    other = Reviewer(LLMService(backend, "reviewer"), head=head, encoder=HashingEncoder(16))
    assert other.method == "head" and other.head_encoder(head, HashingEncoder(16)).name == "hashing:32"
    assert Reviewer.head_encoder(head, None).name == "hashing:32"
    assert [j.p_not_equal for j in other.judge(PAIRS)] == pytest.approx([j.p_not_equal for j in judged])


def test_a_head_whose_encoder_cannot_load_is_a_one_line_error():
    backend = StatesBackend()
    head = head_for(backend, "hashing:1")
    with pytest.raises(ValueError) as error:
        Reviewer(LLMService(backend, "reviewer"), method="head", head=head)
    message = str(error.value)
    assert "\n" not in message and "sentence encoder 'hashing:1', which cannot be loaded" in message


def test_packs_record_the_heads_identity(tmp_path):
    from teams_env.env import TeaMsInstructEnv
    from teams_env.replay.recording import recording_settings

    backend = StatesBackend()
    head = head_for(backend, "hashing:64")
    head.save(tmp_path / "head.json")
    env = TeaMsInstructEnv(
        expert=backend,
        encoder="hashing",
        seeds=["Explain rain."],
        cache=None,
        reviewer_head=tmp_path / "head.json",
    )
    assert env.engine.reviewer.method == "head"
    assert recording_settings(env, {})["reviewer_head_sha256"] == head.fingerprint
    plain = TeaMsInstructEnv(expert=ScriptedBackend(), encoder="hashing", seeds=["Explain rain."], cache=None)
    assert recording_settings(plain, {})["reviewer_head_sha256"] is None  # the head is not this model's


def test_train_reviewer_feature_options(capsys):
    from teams_rl.reviewer_commands import TrainReviewerConfig

    assert TrainReviewerConfig().feature_names() == DEFAULT_ENCODER_FEATURES
    assert TrainReviewerConfig(features="none").feature_names() == ()
    assert TrainReviewerConfig(features="distance, data_echo").feature_names() == ("distance", "data_echo")
    assert TrainReviewerConfig().bench == "bundled,bundled-b"
    assert main(["train-reviewer", "--features", "vibes"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "unknown feature 'vibes'" in error


@pytest.mark.slow
@pytest.mark.parametrize("head", ["pairs-v1", "bundled"])
def test_the_shipped_heads_keep_junk_data_out_of_the_reward(head):
    """With the real embedded model: on the held-out splits of both sets, junk data is rewarded at
    most 10% of the time and a copied demonstration never. The head fitted on the pair sets alone
    (``pairs-v1``) also pays coherent data at least 80% of the time; the bundled judge, whose GOOD
    head learned from readers that the experts' added data is almost never GOOD, pays it far less
    (docs/reviewer.md)."""
    from teams_env.llm.registry import shared_backend
    from teams_rl.reviewer_bench import judge_pairs

    reviewer = Reviewer(LLMService(shared_backend("llamacpp"), "reviewer"), head=head)
    assert reviewer.method == "head" and reviewer.head is not None
    pairs = [p for p in load_benches("bundled,bundled-b", splits=["test"]) if p.category in INPUT_CATEGORIES]
    report = evaluate_judgements(pairs, judge_pairs(reviewer, pairs))
    assert set(report["input"]) == set(INPUT_TARGETS)
    for category, row in report["input"].items():
        assert row["met"] or (head == "bundled" and category == "coherent_input"), (category, row)
    assert report["input"]["demonstration_leak"]["caught_by_rules"] == 1.0


def test_a_judge_with_a_good_head_reads_each_pair_once_under_every_action(fit_good):
    from teams_env.actions import ACTION_NAMES

    backend = StatesBackend()
    head = head_for(backend, "hashing:32")
    rng = np.random.default_rng(5)
    n = 120
    states, extra = rng.normal(size=(n, 8)), rng.normal(size=(n, len(head.encoder_feature_names)))
    actions = rng.integers(0, 6, size=n)
    good = (extra[:, 0] > 0) ^ (actions == 0)
    head = fit_good(head, states, extra, actions, good, ("action", "action*distance"), precision=0.8)
    service = LLMService(backend, "reviewer")
    reviewer = Reviewer(service, method="head", head=dataclasses.replace(head, rules=("missing_input",)))
    pairs = [*PAIRS, ("Sort the list below.\n\n3\n1", "Sort the list below in reverse.")]
    every = reviewer.judge_every_action(pairs)
    assert service.ledger.total().queries == len(PAIRS)  # the rule decides the last pair unread
    assert [len(options) for options in every] == [len(ACTION_NAMES)] * len(pairs)
    for action in range(len(ACTION_NAMES)):
        judged = reviewer.judge(pairs, actions=[action] * len(pairs))
        assert [options[action].p_good for options in every[:-1]] == pytest.approx(
            [j.p_good for j in judged[:-1]]
        )
        assert every[-1][action].p_good is None and judged[-1].method == "rule"
    assert {j.invalid_reason for j in every[-1]} == {"missing_input"}
    with pytest.raises(ValueError, match="give each pair's action"):
        reviewer.judge(PAIRS)
