"""The bench's report: ``benchmark.md`` and its three plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from teams_env.actions import ACTION_NAMES
from teams_rl.agents.benchmark.statistics import MIN_RUNS_FOR_T
from teams_rl.agents.journal import read_jsonl
from teams_rl.agents.plots import pyplot, save_figure

DIVERSITY_BARS = ("vendi_subsampled", "distinct_2", "mean_pairwise_cosine_distance")


def _episode_returns(path: str) -> tuple[np.ndarray, np.ndarray]:
    rows = read_jsonl(Path(path))
    return np.array([r["timestep"] for r in rows], float), np.array([r["return"] for r in rows], float)


def plot_reward_curves(results: Mapping[str, Any], output: Path) -> None:
    """Training return against environment steps: mean over seeds with a band of one standard
    deviation (each seed's returns at each distinct step, or binned on 12 bins when there are
    more); baselines as dashed lines at their
    evaluation mean."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(8, 4.5))
    budget = results["config"]["budget"]
    grid = np.linspace(0, budget, 13)
    for index, agent in enumerate(results["agents"]):
        runs = [r for r in results["runs"] if r["agent"] == agent["name"]]
        colour = f"C{index % 10}"
        if not agent["algo"]:
            mean = results["summary"][agent["name"]]["mean_episode_reward"]["mean"]
            axes.axhline(mean, color=colour, linestyle="--", label=f"{agent['name']} (no training)")
            continue
        episodes = [_episode_returns(run["episodes_file"]) for run in runs]
        episodes = [(steps, returns) for steps, returns in episodes if len(steps)]
        if not episodes:
            continue
        distinct = np.unique(np.concatenate([steps for steps, _ in episodes]))
        # Few update points (small budgets): one per distinct step; otherwise 12 equal bins.
        centres = distinct if len(distinct) <= 12 else (grid[:-1] + grid[1:]) / 2
        edges = (centres[:-1] + centres[1:]) / 2
        curves = [
            [returns[np.digitize(steps, edges) == b].mean() if np.any(np.digitize(steps, edges) == b) else np.nan
             for b in range(len(centres))]
            for steps, returns in episodes
        ]  # fmt: skip
        matrix = np.ma.masked_invalid(np.array(curves))
        mean, spread = matrix.mean(axis=0), matrix.std(axis=0)
        shown = ~np.ma.getmaskarray(mean)
        x, mean, spread = centres[shown], mean[shown].filled(), spread[shown].filled()
        axes.plot(x, mean, color=colour, marker=".", label=f"{agent['name']} ({len(curves)} seeds)")
        axes.fill_between(x, mean - spread, mean + spread, color=colour, alpha=0.2)
    axes.set_xlabel("environment steps (reviewer requests)")
    axes.set_ylabel("episode return")
    axes.set_title("Training reward (mean ± 1 sd over seeds)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, output)


def plot_diversity(results: Mapping[str, Any], output: Path) -> None:
    plt = pyplot()
    names = [agent["name"] for agent in results["agents"]]
    figure, panels = plt.subplots(1, len(DIVERSITY_BARS), figsize=(4 * len(DIVERSITY_BARS), 4))
    for axes, metric in zip(panels, DIVERSITY_BARS):
        means = [results["summary"][n][metric]["mean"] for n in names]
        errors = [results["summary"][n][metric]["ci95"] for n in names]
        axes.bar(
            range(len(names)), means, yerr=errors, capsize=4, color=[f"C{i % 10}" for i in range(len(names))]
        )
        axes.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        title = metric.replace("_", " ")
        if metric == "vendi_subsampled":
            title = f"Vendi score, {results.get('diversity_subsample_size')} random kept rewrites"
        axes.set_title(title, fontsize=10)
    figure.suptitle("Diversity of the kept rewrites on held-out seeds (mean, 95% CI)")
    figure.tight_layout()
    save_figure(figure, output)


def plot_action_heatmaps(results: Mapping[str, Any], output: Path) -> None:
    plt = pyplot()
    names = [agent["name"] for agent in results["agents"]]
    columns = min(3, len(names))
    rows = int(np.ceil(len(names) / columns))
    figure, panels = plt.subplots(
        rows, columns, figsize=(3.4 * columns + 1.5, 3.0 * rows), squeeze=False, constrained_layout=True
    )
    for index, (axes, name) in enumerate(zip(panels.flat, names)):
        matrix = np.array(results["summary"][name]["action_frequencies_by_step"])
        image = axes.imshow(matrix.T, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        axes.set_xticks(range(matrix.shape[0]), [str(s + 1) for s in range(matrix.shape[0])])
        axes.set_yticks(range(len(ACTION_NAMES)), ACTION_NAMES if index % columns == 0 else [], fontsize=7)
        axes.set_xlabel("step")
        axes.set_title(name, fontsize=9)
    for axes in list(panels.flat)[len(names) :]:
        axes.axis("off")
    figure.colorbar(image, ax=panels.ravel().tolist(), shrink=0.8, label="share of episodes")
    figure.suptitle("Actions taken at each step on held-out seeds (mean over seeds)")
    save_figure(figure, output)


def _metric_table(results: Mapping[str, Any], metric: str) -> str:
    lines = ["| agent | mean | 95% CI | runs |", "|---|---|---|---|"]
    for agent in results["agents"]:
        cell = results["summary"][agent["name"]][metric]
        interval = (
            f"± {cell['ci95']:.3f}" if cell["n"] >= MIN_RUNS_FOR_T else f"n/a (< {MIN_RUNS_FOR_T} runs)"
        )
        lines.append(f"| {agent['name']} | {cell['mean']:.3f} | {interval} | {cell['n']} |")
    return "\n".join(lines)


def write_report(out: Path, results: Mapping[str, Any], metrics: Sequence[tuple[str, str]]) -> Path:
    plot_reward_curves(results, out / "reward_curves.png")
    plot_diversity(results, out / "diversity.png")
    plot_action_heatmaps(results, out / "action_heatmap.png")
    config = results["config"]
    seeds = config["run_seeds"]
    size = results.get("diversity_subsample_size")
    sections = "\n\n".join(
        f"### {title.format(size=size)}\n\n{_metric_table(results, metric)}" for metric, title in metrics
    )
    machine = results["machine"]
    text = f"""# Benchmark: RL algorithms on instruction diversity

Command: `{results["command"]}`

Expert `{results["backends"].get("expert")}`, reviewer `{results["backends"].get("reviewer") or results["backends"].get("expert")}`,
encoder `{results["backends"].get("encoder")}`. Training budget: {config["budget"]} environment steps per
learning agent (about one reviewer query each). Evaluation: one episode from each of
{len(results["held_out"])} held-out seed instructions.

**Diversity at one size:** the raw Vendi score grows with the number of rewrites kept, which differs
by agent and seed, so every run is also scored on random subsets of {size} kept rewrites (the fewest
any run kept; mean over 200 subsets) and per rewrite.

**How many runs:** each number is the mean over {len(seeds)} seed(s) ({", ".join(map(str, seeds))}), with
a 95% confidence interval from Student's t where at least {MIN_RUNS_FOR_T} runs make it. With so few runs
the intervals are wide; differences inside them are not evidence.

Machine: {machine["cpu"]}, {machine["cores"]} cores, {machine["memory_gb"]} GB, accelerator {machine["accelerator"]};
Python {machine["python"]}; {", ".join(f"{k} {v}" for k, v in machine["versions"].items())}.

![reward curves](reward_curves.png)
![diversity](diversity.png)
![actions by step](action_heatmap.png)

{sections}
"""
    path = out / "benchmark.md"
    path.write_text(text, encoding="utf-8")
    return path
