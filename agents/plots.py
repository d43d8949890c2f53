"""Matplotlib for reports (the Agg backend, one way to save a figure), the reward curve of a
training run, drawn from its ``episodes.jsonl`` and ``metrics.jsonl``, and the rliable figures
(performance profiles, interval estimates) of ``teams_rl.agents.benchmark.statistics``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from teams_rl.agents.journal import read_jsonl

if TYPE_CHECKING:
    from teams_rl.agents.benchmark.statistics import Band, Interval


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (imported late: plotting is optional)."""
    import matplotlib

    matplotlib.use("Agg")  # must precede the pyplot import
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: Path) -> Path:
    """Write ``figure`` as a PNG (folders created) and free its memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    pyplot().close(figure)
    return path


def plot_reward_curve(
    episodes_file: Path,
    metrics_file: Path,
    output: Path,
    title: str,
    references: Mapping[str, float] | None = None,
    xlabel: str = "environment steps (reviewer requests)",
) -> None:
    """Each episode's return (dots) and SB3's running mean ``rollout/ep_rew_mean`` (line) against
    environment steps; ``references`` (label -> return, e.g. a pack's uniform, best fixed and
    optimal returns) are drawn as dashed horizontal lines."""
    plt = pyplot()
    episodes = read_jsonl(episodes_file)
    means = [row for row in read_jsonl(metrics_file) if "rollout/ep_rew_mean" in row]
    figure, axes = plt.subplots(figsize=(7, 4))
    if episodes:
        steps = np.array([row["timestep"] for row in episodes])
        returns = np.array([row["return"] for row in episodes])
        axes.scatter(steps, returns, s=6, alpha=0.3, label="episode return")
    if means:
        axes.plot(
            [row["step"] for row in means],
            [row["rollout/ep_rew_mean"] for row in means],
            color="C1",
            label="mean of the last 100 episodes",
        )
    for index, (label, value) in enumerate((references or {}).items()):
        axes.axhline(value, color=f"C{index + 2}", linestyle="--", linewidth=1, label=f"{label}: {value:.2f}")
    if not episodes and not means:
        axes.text(0.5, 0.5, "no finished episode yet", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("episodic return (Not-Equal verdicts)")
    axes.set_title(title)
    if episodes or means or references:
        axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    save_figure(figure, output)


def plot_performance_profiles(
    profiles: Mapping[str, Band], taus: np.ndarray, output_path: Path, title: str
) -> Path:
    """Each algorithm's performance profile (the fraction of runs scoring above tau) as a line with
    its confidence band shaded, as in Agarwal et al. 2021, figure 5."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4))
    for index, (name, band) in enumerate(profiles.items()):
        axes.plot(taus, band.point, color=f"C{index}", label=name)
        axes.fill_between(taus, band.low, band.high, color=f"C{index}", alpha=0.2)
    axes.set_xlabel("normalized score τ")
    axes.set_ylabel("fraction of runs with score > τ")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(title)
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    return save_figure(figure, output_path)


def plot_interval_estimates(intervals: Mapping[str, Interval], output_path: Path, xlabel: str) -> Path:
    """One row per algorithm: its confidence interval as a horizontal bar and its point estimate
    (e.g. the IQM) as a black tick, as in Agarwal et al. 2021, figure 9."""
    plt = pyplot()
    names = list(intervals)
    figure, axes = plt.subplots(figsize=(6, 0.5 * len(names) + 1.2))
    for row, name in enumerate(names):
        interval = intervals[name]
        axes.barh(
            row, interval.high - interval.low, left=interval.low, height=0.6, color=f"C{row}", alpha=0.75
        )
        axes.vlines(interval.point, row - 0.3, row + 0.3, color="black", linewidth=2)
    axes.set_yticks(np.arange(len(names)), names)
    axes.invert_yaxis()  # first algorithm on top
    axes.set_xlabel(xlabel)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, output_path)
