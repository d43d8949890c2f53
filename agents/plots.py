"""Matplotlib for reports (the Agg backend, one way to save a figure) and the reward curve of a
training run, drawn from its ``episodes.jsonl`` and ``metrics.jsonl``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.journal import read_jsonl


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


def plot_reward_curve(episodes_file: Path, metrics_file: Path, output: Path, title: str) -> None:
    """Each episode's return (dots) and SB3's running mean ``rollout/ep_rew_mean`` (line) against
    environment steps."""
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
    if not episodes and not means:
        axes.text(0.5, 0.5, "no finished episode yet", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("environment steps (reviewer requests)")
    axes.set_ylabel("episodic return (Not-Equal verdicts)")
    axes.set_title(title)
    if episodes or means:
        axes.legend(loc="lower right")
    figure.tight_layout()
    save_figure(figure, output)
