"""PNG figures of the stage's reports (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from teams_rl.agents.plots import pyplot, save_figure


def save_line_plot(
    path: Path,
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    diagonal: bool = False,
) -> Path:
    """One line per ``label: (x, y)``; ``diagonal`` adds the chance line of a ROC plot."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4.5))
    for label, (x, y) in series.items():
        axes.plot(x, y, label=label, linewidth=1.5)
    if diagonal:
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return save_figure(figure, path)
