"""The reviewer benchmark: its two files, its loader's errors, the metrics, the review head, the
validity rules; and, with the real embedded model, the shipped head on a fixed part of the held-out
split."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import numpy as np
import pytest

from teams_env.reward.review_head import ReviewHead
from teams_env.reward.reviewer import EQUAL, NOT_EQUAL, Judgement
from teams_env.reward.validity import InvalidReason, repeated_share, rule_violation
from teams_env.roc import roc_auc
from teams_rl.cli import main
from teams_rl.review_head_training import balanced_threshold, fit_logistic, train_review_head
from teams_rl.reviewer_bench import (
    ADDITION_CATEGORIES,
    CATEGORIES,
    EQUAL_CATEGORIES,
    INPUT_CATEGORIES,
    INVALID_CATEGORIES,
    REVIEW_CATEGORIES,
    BenchFileError,
    evaluate_judgements,
    judge_pairs,
    load_benches,
    load_pairs,
)

PAIRS = load_pairs()
PAIRS_B = load_benches("bundled-b")


def test_the_bundled_benchmark_covers_every_category_in_both_splits():
    assert len(PAIRS) >= 400
    for split in ("train", "test"):
        counts = Counter(p.category for p in PAIRS if p.split == split)
        assert set(counts) == set(CATEGORIES), split
    by_base = defaultdict(set)
    for pair in PAIRS:
        by_base[pair.base].add(pair.category)
    # Every base has each kind of rewrite; the input categories were added to some of them.
    core = set(REVIEW_CATEGORIES) - {"copy"} - set(INPUT_CATEGORIES)
    for base, categories in by_base.items():
        assert core <= categories, base
        assert len({p.split for p in PAIRS if p.base == base}) == 1, f"{base} spans two splits"


def test_the_input_categories_have_enough_pairs_in_both_splits():
    counts = Counter((p.category, p.split) for p in PAIRS)
    for category, least in (("coherent_input", 40), ("junk_input", 40), ("demonstration_leak", 12)):
        total = counts[category, "train"] + counts[category, "test"]
        assert total >= least, category
        assert 0.25 <= counts[category, "test"] / total <= 0.45, category  # about a third held out
    assert len({p.base for p in PAIRS if p.category in INPUT_CATEGORIES}) >= 30
    # The expert's format ("... Use the table below." then one block) and other phrasings.
    coherent = [p.after for p in PAIRS if p.category == "coherent_input"]
    assert sum("Use the table below." in a for a in coherent) >= 5
    assert sum(not any(f"Use the {k} below." in a for k in ("table", "code", "JSON")) for a in coherent) >= 10


def test_the_input_pairs_are_what_their_category_says():
    from teams_env.reward.junk_rules import demonstration_leak

    for pair in PAIRS + PAIRS_B:
        broken = rule_violation(pair.before, pair.after)
        if pair.category == "demonstration_leak":
            # A phrase of an action's demonstration that the instruction did not have: the rules catch it.
            assert demonstration_leak(pair.before, pair.after) is not None, pair.id
            assert broken is InvalidReason.DEMONSTRATION_LEAK, pair.id
        if pair.category == "coherent_input":
            assert broken is None, pair.id  # coherent data passes the exact junk rules
            assert pair.after.startswith(pair.before.rstrip(".?!")[:20]) or "below" in pair.after, pair.id
    # Most junk is junk no exact rule sees: the head has to learn it.
    junk = [p for p in PAIRS + PAIRS_B if p.category == "junk_input"]
    assert sum(rule_violation(p.before, p.after) is None for p in junk) >= 0.8 * len(junk)


def test_set_b_is_a_second_set_apart_from_set_a():
    assert len(PAIRS_B) >= 200
    assert not {p.before for p in PAIRS} & {p.before for p in PAIRS_B}
    assert not {p.base for p in PAIRS} & {p.base for p in PAIRS_B}
    for split in ("train", "test"):
        assert set(Counter(p.category for p in PAIRS_B if p.split == split)) == set(CATEGORIES), split
    for base in {p.base for p in PAIRS_B}:
        assert len({p.split for p in PAIRS_B if p.base == base}) == 1, f"{base} spans two splits"
    assert 0.25 <= sum(p.split == "test" for p in PAIRS_B) / len(PAIRS_B) <= 0.45
    both = load_benches("bundled,bundled-b", splits=["test"])
    assert len(both) == sum(p.split == "test" for p in PAIRS + PAIRS_B)


def test_two_files_may_not_share_a_base(tmp_path):
    first = write_lines(tmp_path, [GOOD])
    second = tmp_path / "other.jsonl"
    second.write_text(json.dumps({**GOOD, "id": "x-2"}) + "\n")
    with pytest.raises(BenchFileError, match=r"other.jsonl: 'base x' is also in .*pairs.jsonl"):
        load_benches(f"{first},{second}")
    with pytest.raises(ValueError, match="no benchmark named"):
        load_benches(" , ")


@pytest.mark.parametrize("pairs", [PAIRS, PAIRS_B], ids=["A", "B"])
def test_labels_follow_the_categories(pairs):
    for pair in pairs:
        assert pair.before.strip() and pair.after.strip()
        if pair.category in EQUAL_CATEGORIES:
            assert pair.label == EQUAL, pair.id
        else:
            assert pair.label == NOT_EQUAL, pair.id
        assert pair.valid is (pair.category not in (*INVALID_CATEGORIES, "copy")), pair.id
        assert (pair.before == pair.after) is (pair.category == "copy"), pair.id


def test_length_alone_cannot_pass_the_benchmark():
    # Verbose paraphrases against terse constraints, same-length concretizing and topic changes:
    # a judge that reads word-count gain does no better than a coin here.
    def gain(pair):
        return len(pair.after.split()) - len(pair.before.split())

    equal = [gain(p) for p in PAIRS if p.category == "paraphrase"]
    added = [gain(p) for p in PAIRS if p.category in ("add_constraint", "concretize", "breadth")]
    assert roc_auc(added, equal) < 0.6


def write_lines(tmp_path, records):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


GOOD = {
    "id": "x-1",
    "base": "x",
    "split": "test",
    "category": "surface",
    "before": "Explain rain.",
    "after": "Please explain rain.",
    "label": "Equal",
    "valid": True,
}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**GOOD, "label": "Same"}, r"pairs.jsonl:2: unknown label 'Same'"),
        ({k: v for k, v in GOOD.items() if k != "after"}, r"pairs.jsonl:2: missing field 'after'"),
        ({**GOOD, "category": "poem"}, r"pairs.jsonl:2: unknown category 'poem'"),
        ({**GOOD, "valid": "yes"}, r"pairs.jsonl:2: field 'valid' must be true or false"),
        ("{not json", r"pairs.jsonl:2: not valid JSON"),
        (GOOD, r"pairs.jsonl:2: duplicate id 'x-1'"),
    ],
)
def test_bad_benchmark_lines_are_one_line_errors(tmp_path, record, message):
    path = write_lines(tmp_path, [GOOD, record])
    with pytest.raises(BenchFileError, match=message):
        load_pairs(path)


def test_reviewer_bench_command_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["reviewer-bench", "--bench", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: benchmark file not found" in capsys.readouterr().err
    path = write_lines(tmp_path, [{**GOOD, "label": "Same"}])
    assert main(["reviewer-bench", "--bench", str(path), "--review-method", "embedding"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "unknown label 'Same'" in error


def test_metrics_of_a_perfect_and_a_backwards_judge():
    def judgement(pair, right: bool):
        says_not_equal = pair.not_equal == right
        return Judgement(
            NOT_EQUAL if says_not_equal else EQUAL,
            1.0 if says_not_equal else 0.0,
            "head",
            invalid_reason=None if pair.valid == right else InvalidReason.NOT_AN_INSTRUCTION.value,
        )

    perfect = evaluate_judgements(PAIRS, [judgement(p, True) for p in PAIRS])
    backwards = evaluate_judgements(PAIRS, [judgement(p, False) for p in PAIRS])
    assert perfect["review"]["roc_auc"] == 1.0 and backwards["review"]["roc_auc"] == 0.0
    assert perfect["reward"]["accuracy"] == 1.0 and backwards["review"]["balanced_accuracy"] == 0.0
    assert perfect["validity"]["precision_invalid"] == perfect["validity"]["recall_invalid"] == 1.0
    assert all(row["label_accuracy"] == 1.0 for row in perfect["categories"].values())
    # The reward report of the input categories: a perfect judge meets every target, a backwards one none.
    assert perfect["input"]["coherent_input"]["rewarded"] == 1.0
    assert (
        perfect["input"]["junk_input"]["rewarded"]
        == perfect["input"]["demonstration_leak"]["rewarded"]
        == 0.0
    )
    assert all(row["met"] for row in perfect["input"].values())
    assert not backwards["input"]["coherent_input"]["met"]  # it rewards no coherent data
    assert perfect["categories"]["junk_input"]["rewarded"] == 0.0
    assert backwards["categories"]["coherent_input"]["rewarded"] == 0.0
    assert np.isnan(perfect["validity"]["roc_auc"])  # these judgements give no P(valid)


def test_validity_auc_and_caught_by_rules():
    pairs = [p for p in PAIRS if p.category in INPUT_CATEGORIES]
    judgements = [
        Judgement(EQUAL, 0.0, "rule", invalid_reason="demonstration_leak")
        if p.category == "demonstration_leak"
        else Judgement(NOT_EQUAL, 0.9, "head", p_valid=0.8 if p.valid else 0.2)
        for p in pairs
    ]
    report = evaluate_judgements(pairs, judgements)
    assert report["validity"]["roc_auc"] == 1.0
    assert report["input"]["demonstration_leak"]["caught_by_rules"] == 1.0
    assert report["input"]["junk_input"]["caught_by_rules"] == 0.0
    # P(valid) is only a score: the verdict is the invalid_reason, so junk here is still "rewarded".
    assert report["input"]["junk_input"]["rewarded"] == 1.0 and not report["input"]["junk_input"]["met"]


def test_logistic_heads_learn_a_separable_problem_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    states = rng.normal(size=(120, 8))
    not_equal = states[:, 0] > 0
    valid = states[:, 1] > -0.5
    groups = np.arange(120) // 4
    head = train_review_head(
        states, not_equal, valid, np.ones(120, bool), groups, model_id="m", l2=1.0, folds=4
    )
    assert head.training["not_equal"]["cv_auc"] > 0.95 and head.training["valid"]["cv_auc"] > 0.95
    head.save(tmp_path / "head.json")
    loaded = ReviewHead.load(tmp_path / "head.json")
    p_ne, p_valid = loaded.predict(states)
    assert roc_auc(p_ne[not_equal], p_ne[~not_equal]) > 0.99
    assert np.allclose(p_valid, head.predict(states)[1], atol=1e-5)
    with pytest.raises(ValueError, match="hidden states of size 8"):
        loaded.predict(states[:, :4])


def test_fit_and_threshold_helpers():
    x = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    weights = fit_logistic(x, np.array([0, 0, 1, 1]), l2=0.1)
    assert weights[0] > 0
    assert balanced_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == pytest.approx(0.5)


def test_validity_rules():
    assert rule_violation("Explain rain.", "   ") is InvalidReason.EMPTY
    assert rule_violation("Explain rain.", "explain RAIN") is InvalidReason.COPY
    assert rule_violation("Explain rain.", "Explain rain and snow.", cut_off=True) is InvalidReason.CUT_OFF
    loop = "the recipe the recipe the recipe the recipe the recipe the recipe"
    assert repeated_share(loop) > 0.5 and rule_violation("Cook rice.", loop) is InvalidReason.REPETITIVE
    leaked = "Rewritten prompt: cook rice in a pan."
    assert rule_violation("Cook rice.", leaked) is InvalidReason.LEAKED_PROMPT_WORDS
    assert rule_violation("Cook rice.", "Cook brown rice in a pan without a lid.") is None
    for pair in PAIRS:
        if pair.category == "copy":
            assert rule_violation(pair.before, pair.after) is InvalidReason.COPY


def test_the_head_is_refused_for_another_model(tmp_path):
    from teams_env.llm.scripted import ScriptedBackend
    from teams_env.llm.service import LLMService
    from teams_env.reward.reviewer import Reviewer

    service = LLMService(ScriptedBackend(), "reviewer")
    with pytest.raises(ValueError, match="review head cannot judge for this reviewer: it was trained on"):
        Reviewer(service, method="head")
    assert Reviewer(service, method="auto").method == "auto"  # falls back to label likelihood


@pytest.mark.slow
def test_the_shipped_head_passes_a_fixed_part_of_the_held_out_split():
    """With the real embedded model: the default reviewer on 6 held-out pairs per category."""
    from teams_env.llm.registry import shared_backend
    from teams_env.llm.service import LLMService
    from teams_env.reward.reviewer import Reviewer

    held_out = [p for p in PAIRS if p.split == "test"]
    subset = [p for c in CATEGORIES for p in [q for q in held_out if q.category == c][:6]]
    reviewer = Reviewer(LLMService(shared_backend("llamacpp"), "reviewer"))
    assert reviewer.method == "head" and reviewer.head.good is not None
    report = evaluate_judgements(subset, judge_pairs(reviewer, subset))
    assert report["review"]["roc_auc"] >= 0.85
    assert report["review"]["surface_and_paraphrase_called_equal"] >= 0.75
    assert report["review"]["additions_called_not_equal"] >= 0.75
    for category in (*ADDITION_CATEGORIES, "paraphrase", "answer", "garbled", "copy"):
        assert report["categories"][category]["validity_accuracy"] >= 0.5, category
    # At most one LLM call per pair: judged under every action, a pair's hidden state is read once.
    assert reviewer.service.ledger.total().queries <= len(subset)


def test_a_stale_head_for_the_same_model_file_warns(caplog):
    import dataclasses
    import logging

    from teams_env.llm.scripted import ScriptedBackend
    from teams_env.llm.service import LLMService
    from teams_env.reward.reviewer import Reviewer

    backend = ScriptedBackend()
    stale = dataclasses.replace(ReviewHead.load(), model_id=f"{backend.model_id}@0123456789abcdef")
    with caplog.at_level(logging.INFO, logger="teams_env.reward.reviewer"):
        assert Reviewer(LLMService(backend, "reviewer"), head=stale).method == "auto"
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "review head not used" in caplog.text
