"""Membership-inference attack: ROC statistics on known inputs, and the attack on a real model."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from teams_env.roc import bootstrap_auc_interval, roc_auc, roc_curve
from teams_rl.cli import main
from teams_rl.finetune.example_loss import example_losses, scored_tokens
from teams_rl.finetune.models import load_causal_lm, load_tokenizer
from teams_rl.finetune.privacy import attack
from teams_rl.finetune.records import read_examples


def pairwise_auc(positives: list[float], negatives: list[float]) -> float:
    wins = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(positives, negatives)]
    return sum(wins) / len(wins)


def test_auc_is_the_share_of_correctly_ordered_pairs() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        positives = rng.integers(0, 6, size=int(rng.integers(1, 12))).tolist()  # integers: many ties
        negatives = rng.integers(0, 6, size=int(rng.integers(1, 12))).tolist()
        assert roc_auc(positives, negatives) == pytest.approx(pairwise_auc(positives, negatives))


def test_auc_extremes() -> None:
    assert roc_auc([3, 4, 5], [0, 1, 2]) == 1.0
    assert roc_auc([0, 1, 2], [3, 4, 5]) == 0.0
    assert roc_auc([1, 1], [1, 1, 1]) == 0.5
    with pytest.raises(ValueError, match="no scores"):
        roc_auc([], [1.0])


def test_roc_curve_runs_from_origin_to_corner_and_its_area_is_the_auc() -> None:
    positives, negatives = [0.9, 0.8, 0.4, 0.35], [0.7, 0.3, 0.2, 0.1, 0.05]
    fpr, tpr = roc_curve(positives, negatives)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(roc_auc(positives, negatives))


def test_bootstrap_interval_is_seeded_and_covers_the_auc() -> None:
    rng = np.random.default_rng(0)
    positives, negatives = rng.normal(1.0, 1.0, 60), rng.normal(0.0, 1.0, 60)
    interval = bootstrap_auc_interval(positives, negatives, resamples=300, seed=5)
    assert interval == bootstrap_auc_interval(positives, negatives, resamples=300, seed=5)
    low, high = interval
    assert low < roc_auc(positives, negatives) < high
    narrow = bootstrap_auc_interval(positives, negatives, resamples=300, confidence=0.5, seed=5)
    assert low < narrow[0] < narrow[1] < high


@pytest.mark.slow
def test_answer_span_is_the_last_assistant_turn(finetuned_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(finetuned_model)
    chat = [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hello there, friend."}]
    answer = scored_tokens(tokenizer, chat, "answer", max_length=512)
    whole = scored_tokens(tokenizer, chat, "all", max_length=512)
    assert answer.ids == whole.ids and whole.first_scored == 1
    assert tokenizer.decode(answer.ids[answer.first_scored :]).startswith("Hello there, friend.")
    assert len(scored_tokens(tokenizer, chat, "all", max_length=5).ids) == 5


@pytest.mark.slow
def test_attack_finds_members_and_not_two_non_member_sets(
    finetuned_model: Path, chat_data: dict[str, Path], tmp_path: Path
) -> None:
    arguments = ["privacy", "--model", str(finetuned_model), "--members", str(chat_data["members"])]
    arguments += [
        "--non-members",
        str(chat_data["non_members_a"]),
        "--out",
        str(tmp_path),
        "--bootstrap",
        "500",
    ]
    assert main(arguments) == 0
    assert (tmp_path / "roc_curve.png").stat().st_size > 0
    trained_on = json.loads((tmp_path / "privacy.json").read_text())
    assert trained_on["auc_low"] > 0.7  # clearly above chance, interval included
    assert trained_on["mean_loss_members"] < trained_on["mean_loss_non_members"]
    assert (trained_on["members"], trained_on["non_members"]) == (12, 16)

    # the second non-member set against the first, reusing the first's losses from the report
    model = str(finetuned_model)
    examples = read_examples(chat_data["non_members_b"])
    unseen_losses = example_losses(load_causal_lm(model), load_tokenizer(model), examples)
    unseen = attack(unseen_losses, np.array(trained_on["losses"]["non_members"]), resamples=500)
    assert unseen.auc_low < 0.5 < unseen.auc_high
    assert abs(unseen.auc - 0.5) < 0.2


def test_bad_attack_input_is_a_clear_error(
    make_dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"text": "a sentence"}\n{"other": 1}\n')
    arguments = [
        "privacy",
        "--model",
        "embedded",
        "--members",
        str(make_dataset()),
        "--non-members",
        str(plain),
    ]
    assert main(arguments) == 2
    assert f"{plain}:2: expected a 'messages' list or a non-empty 'text' field" in capsys.readouterr().err
