"""The report of a pack bench: ``benchmark.md``, its plots, and the summary printed on the terminal."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from teams_rl.agents.benchmark.pack_summary import (
    BOOTSTRAP_REPS,
    CURVE_POINTS,
    PROFILE_POINTS,
    SPLITS,
    headline,
    interval_text,
)
from teams_rl.agents.benchmark.reward_audit import junk_tables, rates_table
from teams_rl.agents.benchmark.statistics import MIN_RUNS_FOR_T


def _cell(stat: Mapping[str, float], digits: int = 2) -> str:
    """``mean ± half-width``; the mean alone where fewer than ``MIN_RUNS_FOR_T`` runs make it (a
    Student's t interval of 2 runs is wider than the data and says nothing)."""
    if np.isnan(stat["mean"]):
        return "n/a"
    if stat.get("n", MIN_RUNS_FOR_T) < MIN_RUNS_FOR_T:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['ci95']:.{digits}f}"


def write_report(out: Path, results: Mapping[str, Any], audit: Mapping[str, Any]) -> None:
    summary, table, machine = results["summary"], results["ceilings"], results["machine"]
    reps = summary.get("bootstrap_reps", BOOTSTRAP_REPS)
    authors = all("reference" in summary[split] for split in SPLITS)  # the authors' fixed sequence ran
    lines = [
        "# Pack benchmark",
        "",
        f"Command: `{results['command']}`  ",
        f"Pack: `{results['pack']}` (content {results['pack_hash'][:12]}, depth {results['depth']}, "
        f"reward `{results['config']['reward']}`)  ",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB, accelerator "
        f"{machine['accelerator']}; Python {machine['python']}; "
        f"{', '.join(f'{k} {v}' for k, v in machine['versions'].items())}  ",
        f"Date: {results['date']}",
        "",
        f"**{results.get('headline') or headline(summary)}**",
        "",
        "Each learner trained for "
        f"{results['config']['budget']} steps on the train seeds ({results['config']['n_envs']} envs), "
        "then was evaluated with its most likely action, one episode per seed (the replay env is "
        "deterministic). `uniform` rows are sampled episodes; `best-fixed` is the best action sequence "
        "on the train seeds, applied to both splits; `supervised` and `nearest-seed` learn from the "
        "train seeds' optimal actions (a softmax regression on the observation; the optimal policy of "
        "the most cosine-similar training seed), so on the train split nearest-seed is the optimum.",
        "",
        "How the scores are aggregated (after Agarwal et al., NeurIPS 2021):",
        "",
        "- **Per-seed normalized score** of a run on seed s: (R_s − U_s) / (O_s − U_s), with R_s its "
        "return, U_s uniform sampling's exact expected return and O_s the optimum on that seed (0 = "
        "uniform, 1 = optimal). Seeds whose optimum equals uniform's expectation tell no policies "
        "apart and are left out.",
        "- **IQM**: the interquartile mean (mean of the middle 50%) of all runs × seeds scores; runs "
        "are an agent's training seeds, tasks the evaluation seeds. **95% CI**: stratified bootstrap "
        f"({reps} resamples of the runs within each seed, percentile interval).",
        "- **P(X > Y)**: the probability that a run of X scores higher than Y on a random evaluation "
        "seed (ties count ½), averaged over seeds, with a stratified bootstrap 95% CI. Y is exact: "
        "uniform's expected return (score 0) or the best fixed sequence's return.",
        "- **normalized mean return**: (mean return − mean U) / (mean O − mean U) over the split, "
        "mean ± 95% CI over runs (Student's t); the training curves use it.",
        "",
        "## Ceilings (exact, by dynamic programming)",
        "",
        "| split | seeds | uniform (expected) |"
        + (" authors' fixed |" if authors else "")
        + " best fixed | optimal |",
        "|---|---|---|" + ("---|" if authors else "") + "---|---|",
    ]
    for split in SPLITS:
        ceiling = table[split]
        fixed = f" {summary[split]['reference']['return']['mean']:.3f} |" if authors else ""
        lines.append(
            f"| {split} | {ceiling['seeds']} | {ceiling['uniform']:.3f} |{fixed} "
            f"{ceiling['best_fixed']:.3f} ({', '.join(ceiling['best_fixed_sequence'])}) | {ceiling['optimal']:.3f} |"
        )
    for split in SPLITS:
        tasks = summary["tasks"][split]
        left_out = f", {len(tasks['left_out'])} left out (optimum = uniform)" if tasks["left_out"] else ""
        lines += [
            "",
            f"## {'Training' if split == 'train' else 'Held-out'} seeds",
            "",
            f"{len(tasks['seeds'])} task seeds{left_out}.",
            "",
            "| agent | runs | IQM normalized [95% CI] | P(> uniform) [95% CI] | P(> best-fixed) [95% CI] "
            "| normalized mean return | return |",
            "|---|---|---|---|---|---|---|",
        ]
        for agent, stats in summary[split].items():
            improvement = stats["p_improvement"]
            lines.append(
                f"| {agent} | {stats['return']['n']} | {interval_text(stats['iqm'])} | "
                f"{interval_text(improvement['uniform'])} | {interval_text(improvement['best-fixed'])} | "
                f"{_cell(stats['normalized'])} | {_cell(stats['return'])} |"
            )
        lines += ["", f"![performance profiles](profile_{split}.png) ![IQM](iqm_{split}.png)"]
    lines += [
        "",
        "## Dataset worth per expert query",
        "",
        "What the evaluation episodes of a split would give as a dataset, per request to the expert "
        "(the rewriting LLM) they cost. Every agent plays one episode of "
        f"{results['depth']} steps from every seed of the split, so every agent spends the same "
        "expert queries Q (the sum over its steps of the pack nodes' recorded `queries.expert`, "
        "what each live step cost); the table shows Q so that this can be checked.",
        "",
        "- **kept**: rewrites the env paid for (Not Equal, valid and, where the judge has a GOOD head, GOOD), without leaked prompt words;",
        "- **distinct kept** K: the kept rewrites in seed then step order, each dropped when its cosine "
        f"similarity (pack encoder embeddings) to one kept before it is ≥ {summary['near_duplicate_cosine']} "
        "(`teams-rl generate`'s default near-duplicate threshold);",
        "- **K / Q**: distinct kept instructions per expert query;",
        "- **Vendi / Q**: the Vendi score of the K distinct kept (the effective number of distinct "
        "instructions: exp of the entropy of the eigenvalues of their cosine-similarity matrix / K) "
        "per expert query;",
        "- **Vendi of N random kept**: the Vendi score of equal-sized random subsets (mean of 200) of "
        "all kept rewrites, N the fewest any run kept: diversity at equal set size.",
        "",
        "Mean ± 95% CI over runs (Student's t).",
    ]
    for split in SPLITS:
        size = summary["diversity_subsample_size"][split]
        lines += [
            "",
            f"### {'Training' if split == 'train' else 'Held-out'} seeds",
            "",
            f"| agent | Q | kept | distinct kept K | K / Q | Vendi of K | Vendi / Q | Vendi of {size} random kept |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for agent, stats in summary[split].items():
            lines.append(
                f"| {agent} | {_cell(stats['expert_queries'], 0)} | {_cell(stats['kept'], 1)} | "
                f"{_cell(stats['distinct_kept'], 1)} | {_cell(stats['distinct_kept_per_query'], 3)} | "
                f"{_cell(stats['vendi_kept'])} | {_cell(stats['vendi_per_query'], 3)} | "
                f"{_cell(stats['vendi_subsampled'])} |"
            )
    lines += [
        "",
        "## What the reward pays for",
        "",
        "From `teams-rl audit` on the same pack and reward; seeded samples of rewarded rewrites per "
        "action are in [audit/audit.md](audit/audit.md). Read them before trusting a score above.",
        "",
        *rates_table(dict(audit)),
        "",
        *junk_tables(audit["junk"]),
    ]
    lines += [
        "",
        "![training curves](curves.png)",
        "",
        "![normalized mean returns](scores.png)",
        "",
    ]
    (out / "benchmark.md").write_text("\n".join(lines), encoding="utf-8")


def plot(out: Path, summary: Mapping[str, Any], budget: int) -> None:
    from teams_rl.agents.plots import pyplot, save_figure

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4))
    steps = (np.arange(CURVE_POINTS) + 0.5) * budget / CURVE_POINTS
    for index, (agent, curve) in enumerate(summary["curves"].items()):
        mean = np.array([point["mean"] for point in curve])
        half = np.array([point["ci95"] for point in curve])
        axes.plot(steps, mean, color=f"C{index}", label=agent)
        axes.fill_between(steps, mean - half, mean + half, color=f"C{index}", alpha=0.2)
    axes.axhline(0, color="grey", linestyle="--", linewidth=1)
    axes.axhline(1, color="black", linestyle="--", linewidth=1)
    axes.set_xlabel("environment steps")
    axes.set_ylabel("training return, normalized (0 uniform, 1 optimal)")
    axes.set_title("Training on the pack's train seeds (stochastic policy)")
    if summary["curves"]:  # a bench of policies only has no training curve
        axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    save_figure(figure, out / "curves.png")

    figure, axes = plt.subplots(figsize=(8, 4))
    agents = list(summary["train"])
    width = 0.4
    for offset, split in ((-width / 2, "train"), (width / 2, "heldout")):
        means = [summary[split][agent]["normalized"]["mean"] for agent in agents]
        errors = [summary[split][agent]["normalized"]["ci95"] for agent in agents]
        axes.bar(np.arange(len(agents)) + offset, means, width, yerr=errors, capsize=3, label=split)
    axes.axhline(0, color="grey", linewidth=1)
    axes.set_xticks(np.arange(len(agents)), agents, rotation=30, ha="right")
    axes.set_ylabel("normalized score (0 uniform, 1 optimal)")
    axes.legend()
    figure.tight_layout()
    save_figure(figure, out / "scores.png")
    plot_rliable(out, summary)


def plot_rliable(out: Path, summary: Mapping[str, Any]) -> None:
    """Per split: the performance profiles of the per-seed normalized scores with 95% bands
    (``profile_SPLIT.png``) and each agent's IQM with its 95% interval (``iqm_SPLIT.png``)."""
    from teams_rl.agents.benchmark.statistics import Interval, performance_profile_ci
    from teams_rl.agents.plots import plot_interval_estimates, plot_performance_profiles

    for split in SPLITS:
        scores = {
            agent: np.array(rows, dtype=float)
            for agent, rows in summary["task_scores"][split].items()
            if np.size(rows)
        }
        name = "training" if split == "train" else "held-out"
        if scores:
            lowest = min(0.0, min(float(matrix.min()) for matrix in scores.values()))
            taus = np.linspace(lowest, 1.0, PROFILE_POINTS)
            bands = performance_profile_ci(scores, taus, reps=summary.get("bootstrap_reps", BOOTSTRAP_REPS))
            plot_performance_profiles(
                bands, taus, out / f"profile_{split}.png", f"Score distributions on the {name} seeds"
            )
        intervals = {
            agent: Interval(stats["iqm"]["point"], stats["iqm"]["low"], stats["iqm"]["high"])
            for agent, stats in summary[split].items()
            if not np.isnan(stats["iqm"]["point"])
        }
        if intervals:
            plot_interval_estimates(
                intervals,
                out / f"iqm_{split}.png",
                f"IQM of per-seed normalized scores, {name} seeds (95% CI)",
            )


def terminal_summary(results: Mapping[str, Any]) -> list[str]:
    """What ``bench --pack`` prints: the headline, then each agent's held-out IQM with its interval
    and P(> best-fixed); the report holds the rest."""
    lines = [results["headline"], "held-out seeds: IQM normalized [95% CI], P(> best-fixed) [95% CI]"]
    for agent, stats in results["summary"]["heldout"].items():
        lines.append(
            f"  {agent:<24} {interval_text(stats['iqm'])}  {interval_text(stats['p_improvement']['best-fixed'])}"
            f"  ({stats['return']['n']} runs)"
        )
    return lines
