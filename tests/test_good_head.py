"""The GOOD head: fitted on labelled rewrites with their actions, thresholded for precision, saved
and loaded with the review head, and deciding the reward where a head has one."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from teams_env.reward.formula import rewarded_in, unpaid_reason
from teams_env.reward.review_head import ReviewHead
from teams_env.reward.reviewer import head_judgements
from teams_env.roc import roc_auc
from teams_rl.review_head_training import folds_by_group, precision_threshold, train_review_head
from teams_rl.reviewer_commands import good_row_groups, good_training_rows


def test_precision_threshold_takes_the_most_recall_that_reaches_the_precision():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    labels = np.array([1, 1, 0, 1, 1, 0, 0, 1])
    # Calling the top 2: precision 1.0; top 5: 4/5 = 0.8; top 8: 5/8.
    assert precision_threshold(scores, labels, 0.8) == (0.5, True)
    assert precision_threshold(scores, labels, 0.95) == (0.8, True)
    # Tied scores are called together: the cut cannot fall between them.
    tied = np.array([0.9, 0.7, 0.7, 0.1])
    assert precision_threshold(tied, np.array([1, 1, 0, 0]), 0.9) == (0.9, True)
    # No cut reaches 0.99 when the top row is wrong: the best F0.5 instead, flagged as not reached.
    threshold, reached = precision_threshold(np.array([0.9, 0.8, 0.7]), np.array([0, 1, 1]), 0.99)
    assert not reached and threshold == 0.7
    # A precision reached only by calling one GOOD row of five is no reward: F0.5 again.
    threshold, reached = precision_threshold(scores, np.array([1, 0, 0, 1, 1, 1, 0, 1]), 0.99)
    assert not reached and threshold < 0.9


def _head_and_rewrites(rng, n=240):
    """A head, and rewrites whose GOOD label depends on the action: for action 0 (breadth) a
    distant rewrite is good, for the others a close one."""
    states = rng.normal(size=(n, 8))
    extra = rng.normal(size=(n, 2))
    head = train_review_head(
        states,
        extra[:, 0] > 0,
        states[:, 1] > -2.0,
        np.ones(n, bool),
        np.arange(n) // 4,
        model_id="m",
        extra=extra,
        extra_names=("distance", "data_echo"),
        encoder="hashing:64",
        folds=4,
    )
    actions = rng.integers(0, 6, size=n)
    good = np.where(actions == 0, extra[:, 0] > 0.3, extra[:, 0] < -0.3)
    return head, states, extra, actions, good


def test_a_good_head_learns_what_good_means_per_action(tmp_path, fit_good):
    rng = np.random.default_rng(0)
    head, states, extra, actions, good = _head_and_rewrites(rng)
    blind = fit_good(head, states, extra, actions, good, ("action",))
    aware = fit_good(head, states, extra, actions, good, ("action", "action*distance"))
    # Without the action's own weight on the distance, the head cannot tell breadth apart.
    assert aware.training["good"]["cv_auc"] > 0.9 > blind.training["good"]["cv_auc"]
    assert aware.training["good"]["cv_precision"] >= 0.9 and aware.training["good"]["precision_reached"]
    aware.save(tmp_path / "head.json")
    loaded = ReviewHead.load(tmp_path / "head.json")
    assert loaded.good_features == ("action", "action*distance") and loaded.fingerprint == aware.fingerprint
    p_good = loaded.predict_good(states, extra, actions)
    assert roc_auc(p_good[good], p_good[~good]) > 0.95
    assert np.allclose(p_good, aware.predict_good(states, extra, actions))
    # Other heads and older files keep their fingerprint: a field left empty is not hashed.
    assert (
        dataclasses.replace(aware, good=None, good_features=(), training={}).fingerprint == head.fingerprint
    )
    with pytest.raises(ValueError, match="no GOOD head"):
        head.predict_good(states, extra, actions)
    with pytest.raises(ValueError, match="actions for"):
        loaded.predict_good(states, extra, actions[:3])
    with pytest.raises(ValueError, match="unknown GOOD head feature 'action\\*vibes'"):
        dataclasses.replace(aware, good_features=("action*vibes",))


def test_the_good_head_decides_what_is_paid(fit_good):
    rng = np.random.default_rng(1)
    head, states, extra, actions, good = _head_and_rewrites(rng)
    fitted = fit_good(head, states, extra, actions, good, ("action", "action*distance"))
    judgements = head_judgements(fitted, states, extra, actions=actions)
    paid = np.array([j.rewarded for j in judgements])
    assert all(j.p_good is not None for j in judgements)
    # Paid: Not Equal, valid and GOOD; a head without a GOOD head pays Not Equal and valid.
    assert paid.sum() < sum(j.not_equal and j.valid for j in judgements)
    assert good[paid].mean() > 0.9
    assert all(j.good is None for j in head_judgements(head, states, extra))
    with pytest.raises(ValueError, match="give each pair's action"):
        head_judgements(fitted, states, extra)
    unpaid = next(j for j in judgements if j.not_equal and j.valid and not j.good)
    info = {"verdict": unpaid.verdict, "valid": True, "good": False, "p_good": unpaid.p_good, "reward": 0.0}
    assert not rewarded_in(info) and unpaid_reason(info).startswith("the judge does not call it GOOD")
    assert rewarded_in({**info, "good": None})  # a pack recorded before GOOD heads


def _pair(category: str, rewarded: bool):
    from teams_rl.reviewer_bench import LabelledPair

    label = "Not Equal" if rewarded else "Equal"
    return LabelledPair(f"{category}-{rewarded}", "b", "test", category, "before", "after", label, True)


def test_the_benchmark_counts_what_the_judge_pays_for_on_a_hand_made_case():
    from teams_env.reward.reviewer import Judgement
    from teams_rl.reviewer_bench import evaluate_judgements

    def judged(p_good: float, paid: bool) -> Judgement:
        return Judgement("Not Equal", 0.9, "head", p_valid=0.9, p_good=p_good, good=paid)

    pairs = [
        _pair("deepen", True),  # paid, right
        _pair("deepen", True),  # missed
        _pair("breadth", True),  # paid, right
        _pair("surface", False),  # paid, wrong
        _pair("paraphrase", False),  # not paid, right
    ]
    judgements = [
        judged(0.9, True),
        judged(0.2, False),
        judged(0.8, True),
        judged(0.7, True),
        judged(0.1, False),
    ]
    reward = evaluate_judgements(pairs, judgements)["reward"]
    assert reward["precision"] == pytest.approx(2 / 3) and reward["recall"] == pytest.approx(2 / 3)
    # Scores of the rewarded pairs 0.9, 0.2, 0.8 against 0.7, 0.1: 5 of 6 orderings right.
    assert reward["roc_auc"] == pytest.approx(5 / 6)
    low, high = reward["precision_interval"]
    assert low < 2 / 3 < high
    assert reward["per_action"]["deepening"]["recall"] == 0.5
    assert reward["per_action"]["deepening"]["precision"] == 1.0
    assert set(reward["per_action"]) == {"deepening", "breadth"}
    assert reward["accuracy"] == pytest.approx(3 / 5)


def test_a_pair_without_an_action_is_paid_if_any_action_would_pay_it():
    from teams_env.actions import ACTION_NAMES
    from teams_env.reward.reviewer import Judgement
    from teams_rl.reviewer_bench import judge_pairs

    def judged(action: int) -> Judgement:
        return Judgement("Not Equal", 0.9, "head", p_valid=0.9, p_good=action / 10, good=action >= 4)

    class ByAction:
        """A judge whose P(GOOD) is the action's index / 10: breadth 0.0 ... complicate_input 0.5."""

        method = "head"
        head = type("Head", (), {"good": object()})()

        def judge(self, pairs, actions):
            return [judged(a) for a in actions]

        def judge_every_action(self, pairs):
            return [[judged(a) for a in range(len(ACTION_NAMES))] for _ in pairs]

    result = judge_pairs(ByAction(), [_pair("deepen", True), _pair("surface", False)])
    assert result[0].p_good == ACTION_NAMES.index("deepening") / 10 and not result[0].rewarded
    assert result[1].p_good == 0.5 and result[1].rewarded  # the strictest reading: the best action


def test_rows_of_one_group_share_a_fold_and_every_fold_is_used():
    groups = np.array(["s3", "s1", "s2", "s1", "s4", "s3", "s5"])
    fold = folds_by_group(groups, 2)
    assert fold.tolist() == [0, 0, 1, 0, 1, 0, 0]  # sorted groups s1..s5 dealt 0, 1, 0, 1, 0
    assert all(len(set(fold[groups == g])) == 1 for g in set(groups))
    assert set(folds_by_group(groups, 5)) == {0, 1, 2, 3, 4}


def _labelled_file(tmp_path, rows):
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def test_a_good_head_is_fitted_on_train_rows_the_rules_leave_to_it(tmp_path):
    base = {"instruction": "Explain photosynthesis.", "action": "deepening", "label": "GOOD"}
    rows = [
        {
            **base,
            "rewrite": "Explain photosynthesis in C4 plants and why it helps in hot climates.",
            "split": "train",
        },
        {**base, "rewrite": "Explain photosynthesis.", "split": "train"},  # a copy: the rules refuse it
        {**base, "rewrite": "Explain photosynthesis and its light reactions in detail.", "split": "test"},
        {
            **base,
            "rewrite": "Explain how leaves capture light for photosynthesis.",
            "label": None,
        },  # not read
    ]
    kept = good_training_rows([_labelled_file(tmp_path, rows)], ())
    assert [row["rewrite"] for row in kept] == [rows[0]["rewrite"]]
    # Folds group a seed's rewrites, or an instruction's where no seed is named.
    assert good_row_groups([{**rows[0], "seed_id": "seed-007"}, rows[0]]).tolist() == [
        "seed-007",
        "Explain photosynthesis.",
    ]
    with pytest.raises(ValueError, match="unknown action 'sideways'"):
        good_training_rows([_labelled_file(tmp_path, [{**rows[0], "action": "sideways"}])], ())
    with pytest.raises(ValueError, match="no train rows"):
        good_training_rows([_labelled_file(tmp_path, rows[1:])], ())
