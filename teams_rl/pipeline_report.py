"""``report.md`` of a pipeline run: what ran, what it cost, and what came out, for a newcomer."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from teams_rl.pipeline_config import PipelineConfig

DIVERSITY_ROWS = (
    ("items", "items (n)"),
    ("vendi_subsampled", "Vendi score on {size} random items: mean [95% interval over {resamples} subsets]"),
    ("vendi_subsampled_per_item", "Vendi score per item, on {size} random items"),
    ("vendi_score", "Vendi score, raw (effective number of distinct items of all n)"),
    ("vendi_per_item", "Vendi score, raw / n"),
    ("distinct_1", "distinct-1"),
    ("distinct_2", "distinct-2"),
    ("mean_pairwise_cosine_distance", "mean pairwise cosine distance"),
    ("mean_nearest_neighbour_distance", "mean nearest-neighbour distance"),
    ("words_mean", "words per instruction (mean)"),
)


def _image(out: Path, path: Path, caption: str) -> str:
    return f"![{caption}]({os.path.relpath(path, out)})" if path.is_file() else f"*({caption}: not produced)*"


def _queries_table(rows: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    lines = [
        "| stage | role | queries | cache hits | prompt tokens | output tokens |",
        "|---|---|---|---|---|---|",
    ]
    for stage, roles in rows.items():
        for role, usage in roles.items():
            if role == "total":
                continue
            lines.append(
                f"| {stage} | {role} | {usage.get('queries', 0)} | {usage.get('cache_hits', 0)} | "
                f"{usage.get('prompt_tokens', 0)} | {usage.get('completion_tokens', 0)} |"
            )
    return "\n".join(lines)


def _status(timing: Mapping[str, Any]) -> str:
    if timing["skipped"]:
        return "skipped (complete, same options)"
    return f"ran again ({timing['reason']})" if timing.get("reason") else "ran"


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _diversity_cell(key: str, column: Mapping[str, Any]) -> str:
    if key == "vendi_subsampled":
        return (
            f"{column[key]:.3f} [{column['vendi_subsampled_low']:.3f}, {column['vendi_subsampled_high']:.3f}]"
        )
    if key == "vendi_score":
        return f"{column[key]:.3f} (n={column['items']})"
    return _number(column[key])


def _diversity_section(diversity: Mapping[str, Mapping[str, Any]], encoder: Any) -> str:
    seeds, dataset = diversity["seeds"], diversity["dataset"]
    size, resamples = dataset.get("vendi_subsample_size"), dataset.get("vendi_subsample_resamples")
    lines = ["| metric | seeds the kept items grew from (before) | dataset (after) |", "|---|---|---|"]
    lines += [
        f"| {label.format(size=size, resamples=resamples)} | {_diversity_cell(key, seeds)} | "
        f"{_diversity_cell(key, dataset)} |"
        for key, label in DIVERSITY_ROWS
        if key in seeds and key in dataset  # an evaluation from before size control has no subsets
    ]
    sizes = (
        f"The raw Vendi score grows with the number of items, so the two sets ({seeds['items']} and "
        f"{dataset['items']} items) are compared on random subsets of {size} items each (the smaller "
        "set's size; a set of exactly that size is one subset) and per item.\n\n"
        if size is not None
        else ""
    )
    return f"## 3. Diversity before and after\n\nEmbeddings: `{encoder}`. " + sizes + "\n".join(lines)


def _lm_eval_table(results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    lines = ["| model | task | metric | value |", "|---|---|---|---|"]
    for model, tasks in results.items():
        for task, metrics in tasks.items():
            for key, value in metrics.items():
                if (
                    isinstance(value, (int, float))
                    and "stderr" not in key
                    and key.split(",")[0] in ("acc", "acc_norm")
                ):
                    lines.append(f"| {model} | {task} | {key.split(',')[0]} | {value:.3f} |")
    return "\n".join(lines)


def _pack_intro(evaluation: Mapping[str, Any]) -> str:
    train = evaluation["splits"].get("train") or {}
    return (
        f"Trained on the recorded pack `{evaluation['pack']}` (content "
        f"{str(evaluation['pack_content_sha256'])[:12]}, depth {evaluation['depth']}): "
        f"{evaluation['timesteps']} replay steps from its {train.get('seeds', '?')} train seeds, no LLM "
        "call. The replay env has the live env's observation and action spaces, so the same policy "
        f"then drives the live expert below ({evaluation['max_steps']} rewrites a seed).\n\n"
    )


def _score(value: Any) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _pack_eval_section(evaluation: Mapping[str, Any]) -> str:
    """The trained policy on the pack's held-out (and train) seeds against the exact references."""
    names = {"heldout": "held-out", "train": "train"}
    lines = [
        "| seeds | policy return | **normalized score** | uniform (expected) | best fixed (normalized) | optimal |",
        "|---|---|---|---|---|---|",
    ]
    for split in ("heldout", "train"):
        result = evaluation["splits"].get(split)
        if not result:
            continue
        lines.append(
            f"| {names[split]} ({result['seeds']}) | {result['return']:.3f} | **{_score(result['normalized'])}** | "
            f"{result['uniform']:.3f} | {result['best_fixed']:.3f} ({_score(result['best_fixed_normalized'])}) | "
            f"{result['optimal']:.3f} |"
        )
    return (
        "\n\nThe trained policy, with its most likely action, one episode per pack seed (the replay env is "
        "deterministic, so each return is exact), on the held-out seeds it never trained on and on its "
        "train seeds:\n\n"
        + "\n".join(lines)
        + "\n\nNormalized score: (R - U) / (O - U) of the mean returns, U uniform sampling's exact "
        "expected return (Evol-Instruct's; score 0), O the optimum (score 1), both by dynamic programming "
        "over the pack. Best fixed: the one action sequence with the best mean return on the train seeds "
        f"({', '.join(evaluation['best_fixed_sequence'])}), the ceiling of a policy blind to the text."
    )


def _reading_line(folder: Path) -> str:
    """The dataset's GOOD share where its items were read (``docs/reading-protocol.md``), else how to
    read them: the reviewer's count is not the dataset's worth."""
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        return (
            "- Read blind: not yet. `teams-rl reading-export data/dataset.jsonl --out data/reading`, label the "
            "blind files with the rubric, then `teams-rl reading-merge data/reading --labels ...` and rerun."
        )
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    overall = next(row for row in summary["table"] if all(row[field] == "all" for field in summary["by"]))
    kappa = f", Cohen's kappa {summary['kappa']:.2f}" if summary.get("kappa") is not None else ""
    return (
        f"- **Read blind: {overall['good_share']:.0%} GOOD** ({overall['good']} of {overall['n']} read; 95% "
        f"interval {overall['good_low']:.0%}-{overall['good_high']:.0%}{kappa})."
    )


def write_report(
    out: Path,
    config: PipelineConfig,
    results: Mapping[str, Mapping[str, Any]],
    timings: Mapping[str, Mapping[str, Any]],
    seconds: float,
) -> Path:
    train, generate, sft, evaluate = (results.get(s, {}) for s in ("train", "generate", "sft", "evaluate"))
    stats = generate.get("stats", {})
    stage_lines = "\n".join(
        f"| {stage} | {_status(t)} | {t['seconds']:.0f} |" for stage, t in timings.items()
    )
    sections = [
        "# TeaMs-RL pipeline report",
        f"Preset `{config.preset}`, seed {config.seed}, run directory `{out}`. "
        f"Expert `{stats.get('expert', config.expert or 'see preset')}`, reviewer `{stats.get('reviewer', '')}`, "
        f"responder `{stats.get('responder', '')}`. This run took {seconds:.0f} s.",
        "## What ran\n\n| stage | status | seconds |\n|---|---|---|\n" + stage_lines,
        "A policy (the *instructor*) was trained to pick rewrites that a reviewer LLM judges to add "
        "information; it then drove the expert LLM over seed instructions to build a dataset, a model was "
        "fine-tuned once on it, and the results were measured.",
    ]
    if train:
        episodes = train.get("episodes")
        progress = (
            f"{episodes} training episodes; mean return (paid rewrites of "
            f"{train.get('episode_length') or 6}) {train['first_quarter_return']:.2f} in the first "
            f"quarter of them, {train['last_quarter_return']:.2f} in the last.\n\n"
            if episodes
            else ""
        )
        pack_eval = train.get("pack_eval")
        sections.append(
            "## 1. Training the instructor\n\n"
            + (_pack_intro(pack_eval) if pack_eval else "")
            + progress
            + _image(out, out / "train" / "reward_curve.png", "training reward curve")
            + (_pack_eval_section(pack_eval) if pack_eval else "")
        )
    if stats:
        rules = (
            ", ".join(f"{rule}: {count}" for rule, count in stats.get("rejected_by_rule", {}).items())
            or "none"
        )
        per_item = stats.get("expert_queries_per_kept_item")
        sections.append(
            "## 2. The dataset\n\n"
            f"- {stats['seeds']['done']} seed instructions, {stats['candidates']} rewrites, **{stats['kept']} kept**, "
            f"{stats['rejected']} eliminated ({rules}).\n"
            f"- Expert queries per kept item (rewrites and answers): "
            f"{f'{per_item:.2f}' if per_item else 'n/a'} (the paper: about 2.0).\n"
            f"- Split for fine-tuning: {sft.get('sft_train', 'n/a')} training items, {sft.get('sft_heldout', 'n/a')} "
            "held out (whole seeds).\n"
            f"- Files: `data/dataset.jsonl`, `data/rejects.jsonl`, `data/README.md`.\n"
            + _reading_line(out / "data" / "reading")
        )
    query_rows: dict[str, Any] = {}
    if any(role != "total" for role in train.get("queries", {})):  # a pack run makes none
        query_rows["train"] = train["queries"]
    if stats.get("queries"):
        query_rows["generate"] = stats["queries"]
    if query_rows:
        sections.append("## Queries to the models\n\n" + _queries_table(query_rows))
    diversity = evaluate.get("diversity")
    if diversity:
        sections.append(_diversity_section(diversity, evaluate.get("encoder")))
    if sft:
        summary = sft["summary"]
        sections.append(
            f"## 4. Fine-tuning\n\nBase `{sft['base']}`: training loss {summary['first_loss']:.3f} -> "
            f"{summary['final_loss']:.3f} over {summary['steps']} steps ({summary['tokens_per_second']:.0f} tokens/s).\n\n"
            + _image(out, out / "model" / "loss_curve.png", "loss curve")
        )
    privacy = evaluate.get("privacy")
    if privacy:
        sections.append(
            "## 5. Privacy: membership-inference attack\n\n"
            f"AUC **{privacy['auc']:.3f}** ({privacy['confidence']:.0%} CI {privacy['auc_low']:.3f}-{privacy['auc_high']:.3f}) "
            f"with {privacy['members']} members (trained on) and {privacy['non_members']} non-members (held out). "
            "0.5 means the attack cannot tell them apart; the paper reports 0.47 for its model and 0.72 for a "
            "baseline trained on 44k examples.\n\n"
            + _image(out, out / "eval" / "privacy" / "roc_curve.png", "ROC curve")
        )
    if evaluate.get("lm_eval"):
        sections.append("## 6. Benchmarks (lm-evaluation-harness)\n\n" + _lm_eval_table(evaluate["lm_eval"]))
    path = out / "report.md"
    path.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return path
