"""``teams-rl reviewer-bench`` measures a reviewer on labelled pairs before its verdicts become
rewards; ``teams-rl train-reviewer`` fits a review head for a reviewer model on labelled pairs (the
bundled benchmarks' training splits, or your own domain's pairs in the same format)."""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from teams_env.env_config import env_option
from teams_env.options import option
from teams_env.reward.review_head import ENCODER_FEATURES
from teams_rl.review_head_training import GOOD_DEFAULTS

BATCH = 16


@dataclass
class ReviewerOptions:
    # Here there is no expert to fall back on: the reviewer's default is the env's expert, and as in
    # the env, a specialist expert's reviewer is its base model (the adapter was trained to rewrite).
    reviewer: str = env_option(
        "expert",
        "reviewer LLM backend: llamacpp[:GGUF], hf[:MODEL], openai:MODEL?... (a specialist: its base model)",
    )
    bench: str = option(
        "bundled",
        "labelled pairs: bundled (set A), bundled-b (set B, written apart from A), a JSONL file, "
        "or several joined by commas",
    )
    cache: str = env_option("cache")

    def pairs(self, splits: list[str]) -> list[Any]:
        from teams_rl.reviewer_bench import load_benches

        return load_benches(self.bench, splits=splits)

    def service(self) -> Any:
        from teams_env.llm.cache import open_cache
        from teams_env.llm.registry import shared_backend, without_adapter
        from teams_env.llm.service import LLMService

        return LLMService(
            without_adapter(shared_backend(self.reviewer)),
            "reviewer",
            cache=open_cache(self.cache),
        )


@dataclass
class ReviewerBenchConfig(ReviewerOptions):
    review_method: str = env_option("review_method")
    reviewer_head: str = env_option("reviewer_head")
    reviewer_threshold: float | str = env_option(
        "reviewer_threshold", "P(Not Equal) from which a pair is called Not Equal, or auto (calibrated)"
    )
    encoder: str = env_option("encoder", "sentence encoder (for the embedding judge)")
    split: str = option("test", "pairs to judge: test (never trained or calibrated on), train, or all")
    out: str = option("", "write OUT.json and OUT.md (results with the command, date and machine)")

    def validate(self) -> None:
        _splits(self.split)


@dataclass
class TrainReviewerConfig(ReviewerOptions):
    bench: str = option(
        "bundled,bundled-b",
        "labelled pairs: bundled (set A), bundled-b (set B), a JSONL file, or several joined by commas",
    )
    split: str = option("train", "pairs to train on: train, test or all (the bundled test split is held out)")
    l2: float = option(10.0, "L2 penalty of the logistic heads (chosen on the benchmark's training split)")
    folds: int = option(5, "cross-validation folds (grouped by base instruction) that set the thresholds")
    features: str = option(
        "default",
        "sentence-encoder and word-count features beside the hidden state: default (all of them), none, "
        f"or names joined by commas ({', '.join(ENCODER_FEATURES)})",
    )
    encoder: str = env_option("encoder", "sentence encoder of the features")
    feature_weight: float = option(
        5.0, "scale of the standardised encoder features while fitting (against 576 hidden dimensions)"
    )
    components: int = option(0, "fit on this many principal components of the hidden state (0: all of it)")
    good_labels: list[str] = option(
        [],
        "labelled rewrites (reading-merge's labelled.jsonl files): fit a GOOD head on their train split "
        "(rows with split=train, or every row without a split); the head then decides the reward",
    )
    good_precision: float = option(
        0.85, "the GOOD head's threshold: the lowest whose cross-validated precision reaches this"
    )
    good_components: int = option(
        GOOD_DEFAULTS["components"], "principal components of the hidden state the GOOD head is fitted on"
    )
    good_l2: float = option(GOOD_DEFAULTS["l2"], "L2 penalty of the GOOD head")
    rules: str = option(
        "default",
        "exact rules the judge applies before its heads: default (all: filler_steps, missing_input), "
        "none, or names joined by commas",
    )
    out: str = option("review_head.json", "where to write the head (JSON)")

    def validate(self) -> None:
        _splits(self.split)
        if not 0.0 < self.good_precision < 1.0:
            raise ValueError(f"good_precision must be in (0, 1), got {self.good_precision}")
        self.rule_names()
        if self.l2 <= 0 or self.folds < 2:
            raise ValueError("l2 must be positive and folds at least 2")
        if self.feature_weight <= 0 or self.components < 0:
            raise ValueError("feature_weight must be positive and components at least 0")
        self.feature_names()

    def feature_names(self) -> tuple[str, ...]:
        from teams_env.reward.review_head import DEFAULT_ENCODER_FEATURES, ENCODER_FEATURES

        return _names(self.features, "feature", tuple(ENCODER_FEATURES), DEFAULT_ENCODER_FEATURES)

    def rule_names(self) -> tuple[str, ...]:
        from teams_env.reward.junk_rules import JUDGE_DETECTORS

        return _names(self.rules, "rule", tuple(JUDGE_DETECTORS), tuple(JUDGE_DETECTORS))


def _names(value: str, what: str, known: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    """An option naming some of ``known``: ``default``, ``none``, or names joined by commas."""
    if value in ("default", "none"):
        return default if value == "default" else ()
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ValueError(
            f"unknown {what} '{unknown[0] if unknown else value}'; use default, none or names from {', '.join(known)}"
        )
    return names


def _splits(split: str) -> list[str]:
    """The benchmark splits a ``--split`` option names (test, train, or all of them)."""
    if split not in ("test", "train", "all"):
        raise ValueError(f"split must be test, train or all, got '{split}'")
    return ["train", "test"] if split == "all" else [split]


def _command() -> str:
    return "teams-rl " + shlex.join(sys.argv[1:])


def run_bench(config: ReviewerBenchConfig) -> int:
    from teams_env.encoder import shared_encoder
    from teams_env.reward.reviewer import Reviewer
    from teams_env.system_info import machine
    from teams_rl.reviewer_bench import evaluate_judgements, judge_pairs

    pairs = config.pairs(_splits(config.split))
    method = config.review_method
    service = config.service() if method != "embedding" else None
    encoder = shared_encoder(config.encoder) if method == "embedding" else None
    reviewer = Reviewer(
        service if service is not None else _no_llm(),
        method=method,  # type: ignore[arg-type]
        threshold=config.reviewer_threshold,
        head=config.reviewer_head,
        encoder=encoder,
    )
    if reviewer.method in ("auto", "likelihood"):
        reviewer.calibrated_threshold()  # its anchor queries are not the benchmark's cost

    def requests() -> int:  # answered by the model or by the cache alike
        usage = service.ledger.total() if service is not None else None
        return usage.queries + usage.cache_hits if usage is not None else 0

    calls_before = requests()
    judgements = []
    start = time.perf_counter()
    for first in tqdm(range(0, len(pairs), BATCH), desc="reviewer-bench", unit="batch"):
        batch = pairs[first : first + BATCH]
        judgements += judge_pairs(reviewer, batch)
    seconds = time.perf_counter() - start
    report = evaluate_judgements(pairs, judgements)
    calls = requests() - calls_before
    report["cost"] = {
        "llm_calls_per_judgement": calls / len(pairs),
        "seconds_per_judgement": seconds / len(pairs),
        "cache_hits": service.ledger.total().cache_hits if service is not None else 0,
    }
    report["reviewer"] = {
        "backend": config.reviewer if method != "embedding" else "none",
        "method": reviewer.method,
        "threshold": reviewer.decision_threshold,
        "head": reviewer.head.fingerprint if reviewer.method == "head" and reviewer.head else None,
        "head_features": list(reviewer.head.features)
        if reviewer.method == "head" and reviewer.head
        else None,
        "bench": config.bench,
        "split": config.split,
    }
    table = format_report(report)
    print(table)
    if config.out:
        record = {
            "command": _command(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": machine(),
            **report,
        }
        target = Path(config.out)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        target.with_suffix(".md").write_text(f"`{record['command']}`\n\n{table}\n", encoding="utf-8")
        print(f"wrote {target.with_suffix('.json')} and {target.with_suffix('.md')}")
    return 0


def _no_llm() -> Any:
    """A service for the embedding judge, which never calls it."""
    from teams_env.llm.scripted import ScriptedBackend
    from teams_env.llm.service import LLMService

    return LLMService(ScriptedBackend(), "reviewer")


def _paid_line(row: dict[str, Any]) -> str:
    def share(name: str) -> str:
        if row[name] is None:
            return "n/a"
        low, high = row[f"{name}_interval"]
        return f"{row[name]:.2f} [{low:.2f}, {high:.2f}]"

    auc = "n/a" if row["roc_auc"] is None else f"{row['roc_auc']:.3f}"
    return f"AUC {auc}, precision {share('precision')}, recall {share('recall')}"


def format_report(report: dict[str, Any]) -> str:
    review, validity = report["review"], report["validity"]
    reviewer = report["reviewer"]
    lines = [
        f"reviewer {reviewer['backend']} ({reviewer['method']}, threshold {reviewer['threshold']}), "
        f"{report['pairs']} pairs of split '{reviewer['split']}'",
        "",
        "| category | pairs | label accuracy | validity accuracy | mean P(Not Equal) | rewarded |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in report["categories"].items():
        lines.append(
            f"| {name} | {row['pairs']} | {row['label_accuracy']:.2f} | {row['validity_accuracy']:.2f} | "
            f"{row['mean_p_not_equal']:.2f} | {row['rewarded']:.2f} |"
        )
    if report.get("input"):
        lines += [
            "",
            "Rewrites that add input (reward = valid and Not Equal):",
            "",
            "| category | pairs | rewarded | caught by the exact rules | target | met |",
            "|---|---|---|---|---|---|",
        ]
        for name, row in report["input"].items():
            lines.append(
                f"| {name} | {row['pairs']} | {row['rewarded']:.0%} | {row['caught_by_rules']:.0%} | "
                f"{row['target']} | {'yes' if row['met'] else 'no'} |"
            )
    per_action = report["reward"].get("per_action", {})
    if per_action:
        lines += ["", "| action (by category) | pairs | paid for rewarded pairs |", "|---|---|---|"]
        lines += [f"| {action} | {row['pairs']} | {_paid_line(row)} |" for action, row in per_action.items()]
    cost = report["cost"]
    lines += [
        "",
        f"- Equal vs Not Equal ({review['pairs']} pairs): ROC AUC {review['roc_auc']:.3f}, balanced "
        f"accuracy {review['balanced_accuracy']:.3f}; surface edits and paraphrases called Equal "
        f"{review['surface_and_paraphrase_called_equal']:.0%}, real additions called Not Equal "
        f"{review['additions_called_not_equal']:.0%}",
        f"- validity: ROC AUC {validity['roc_auc']:.3f}; invalid rewrites caught with precision "
        f"{validity['precision_invalid']:.2f}, recall {validity['recall_invalid']:.2f}; valid rewrites kept "
        f"{validity['valid_kept']:.0%}",
        f"- reward (valid and Not Equal, and GOOD where the judge has a GOOD head) matches the label for "
        f"{report['reward']['accuracy']:.0%} of pairs; paid for rewarded pairs: {_paid_line(report['reward'])}",
        f"- cost: {cost['llm_calls_per_judgement']:.2f} LLM calls and {cost['seconds_per_judgement']:.3f} s "
        "per judgement",
    ]
    return "\n".join(lines)


def run_train(config: TrainReviewerConfig) -> int:
    from teams_env.encoder import shared_encoder
    from teams_env.reward.review_head import encoder_features, head_conversation
    from teams_env.reward.validity import rule_violation
    from teams_rl.review_head_training import train_review_head
    from teams_rl.reviewer_bench import REVIEW_CATEGORIES

    # Pairs the validity rules already decide (copies, loops, ...) never reach the head: training on
    # them would teach it that a near-copy, such as a surface edit, is invalid.
    pairs = [p for p in config.pairs(_splits(config.split)) if rule_violation(p.before, p.after) is None]
    names = config.feature_names()
    service = config.service()
    states: list[np.ndarray] = []
    for first in tqdm(range(0, len(pairs), BATCH), desc="hidden states", unit="batch"):
        batch = pairs[first : first + BATCH]
        states += service.last_hidden_states([head_conversation(p.before, p.after) for p in batch])
    encoder = shared_encoder(config.encoder) if names else None
    extra = encoder_features(encoder, [(p.before, p.after) for p in pairs], names) if encoder else None
    head = train_review_head(
        np.asarray(states),
        np.array([p.not_equal for p in pairs]),
        np.array([p.valid for p in pairs]),
        np.array([p.category in REVIEW_CATEGORIES for p in pairs]),
        np.array([p.base for p in pairs]),
        model_id=service.backend.model_id,
        l2=config.l2,
        folds=config.folds,
        extra=extra,
        extra_names=names,
        encoder=encoder.name if encoder is not None else "",
        components=config.components,
        extra_weight=config.feature_weight,
    )
    head = replace(head, rules=config.rule_names())
    if config.good_labels:
        head = _with_good_head(head, config, service, encoder)
    head.training.update(
        {"bench": config.bench, "split": config.split, "pairs": len(pairs), "command": _command()}
    )
    head.save(config.out)
    training = head.training
    if head.good is not None:
        good = training["good"]
        print(
            f"GOOD head: {good['rows']} labelled rewrites ({good['positives']} GOOD), cross-validated AUC "
            f"{good['cv_auc']:.3f}, precision {good['cv_precision'] or 0:.2f} and recall {good['cv_recall'] or 0:.2f} "
            f"at threshold {head.good.threshold:.3f}"
            + (
                ""
                if good["precision_reached"]
                else f" (precision {config.good_precision} not reached: best F0.5)"
            )
        )
    print(
        f"wrote {config.out}: Not Equal head cross-validated AUC {training['not_equal']['cv_auc']:.3f} "
        f"(threshold {head.not_equal.threshold:.3f}), validity head {training['valid']['cv_auc']:.3f} "
        f"(threshold {head.valid.threshold:.3f}), {len(pairs)} pairs, features: {', '.join(head.features)}"
    )
    return 0


def good_training_rows(paths: list[str], judge_rules: Any) -> list[dict[str, Any]]:
    """The labelled rewrites a GOOD head is fitted on: the train rows of readers' files
    (``reading-merge``'s ``labelled.jsonl``) that the judge's rules leave to the heads (what the
    rules refuse never reaches them)."""
    from teams_env.actions import ACTION_NAMES
    from teams_env.reward.validity import rule_violation
    from teams_rl.reading import labelled_rows

    rows = [
        row
        for row in labelled_rows(paths)
        if row.get("split", "train") == "train"
        and rule_violation(row["instruction"], row["rewrite"], judge_rules=judge_rules) is None
    ]
    unknown = next((row["action"] for row in rows if row["action"] not in ACTION_NAMES), None)
    if unknown is not None:
        raise ValueError(f"labelled rewrites: unknown action '{unknown}'; known: {', '.join(ACTION_NAMES)}")
    if not rows:
        raise ValueError(f"no train rows to fit a GOOD head on in {', '.join(paths)}")
    return rows


def good_row_groups(rows: list[dict[str, Any]]) -> np.ndarray:
    """Each labelled rewrite's cross-validation group: its seed (its instruction where it names
    none), so no seed's rewrites are both fitted on and scored."""
    return np.array([str(row.get("seed_id", row["instruction"])) for row in rows])


def _with_good_head(head: Any, config: TrainReviewerConfig, service: Any, encoder: Any) -> Any:
    """``head`` with a GOOD head fitted on the train rows of ``config.good_labels`` that its rules
    leave to the heads (what the rules refuse never reaches them)."""
    from teams_env.actions import ACTION_NAMES
    from teams_env.reward.review_head import encoder_features, head_conversation
    from teams_rl.review_head_training import GOOD_FEATURES, fit_good_head

    rows = good_training_rows(config.good_labels, head.rules)
    pairs = [(row["instruction"], row["rewrite"]) for row in rows]
    states: list[np.ndarray] = []
    for first in tqdm(range(0, len(pairs), BATCH), desc="hidden states (labelled)", unit="batch"):
        states += service.last_hidden_states(
            [head_conversation(a, b) for a, b in pairs[first : first + BATCH]]
        )
    extra = (
        encoder_features(encoder, pairs, head.encoder_feature_names) if head.encoder_feature_names else None
    )
    return fit_good_head(
        head,
        head.standardise(np.asarray(states), extra),
        np.array([ACTION_NAMES.index(row["action"]) for row in rows]),
        np.array([row["label"] == "GOOD" for row in rows]),
        good_row_groups(rows),
        good_features=GOOD_FEATURES,
        l2=config.good_l2,
        folds=config.folds,
        components=config.good_components,
        extra_weight=config.feature_weight,
        precision=config.good_precision,
    )
