"""The reward curve of a training run, drawn from its ``episodes.jsonl`` and ``metrics.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_reward_curve(episodes_file: Path, metrics_file: Path, output: Path, title: str) -> None:
    """Each episode's return (dots) and SB3's running mean ``rollout/ep_rew_mean`` (line) against
    environment steps."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot
    import matplotlib.pyplot as plt

    episodes = _read_jsonl(episodes_file)
    means = [row for row in _read_jsonl(metrics_file) if "rollout/ep_rew_mean" in row]
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
    figure.savefig(output, dpi=120)
    plt.close(figure)
