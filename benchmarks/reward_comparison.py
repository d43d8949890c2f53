"""Rewards side by side: what the datasets of agents trained on each reward are worth per expert query.

Reads the ``results.json`` of ``teams-rl bench --pack`` runs made on the same pack with different
``--reward``s, and sets each agent's held-out numbers next to each other. The worth of a dataset
does not depend on the reward an agent was trained on (a kept rewrite is one the recorded reviewer
accepted, valid, without leaked prompt words; see the bench report), so the columns compare like
with like: same pack, same seeds, same expert queries per agent.

    python -m benchmarks.reward_comparison benchmarks/results/prompted_pack/bench_pack \
        benchmarks/results/prompted_pack/bench_pack_novelty benchmarks/results/prompted_pack/bench_pack_vendi_gain
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.common import markdown_table, write_result

SPLIT = "heldout"


def _mean_ci(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "n/a"
    if (stats.get("ci95") or 0.0) < 0.005:  # a deterministic agent: its runs are one (up to rounding)
        return f"{stats['mean']:.2f}"
    return f"{stats['mean']:.2f} ± {stats['ci95']:.2f}"


def _iqm(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "n/a"
    if stats["low"] == stats["high"]:
        return f"{stats['point']:.2f}"
    return f"{stats['point']:.2f} [{stats['low']:.2f}, {stats['high']:.2f}]"


def load(directory: Path) -> dict[str, Any]:
    path = directory / "results.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no bench results there (run teams-rl bench --pack ... --out {directory})")
    results = json.loads(path.read_text(encoding="utf-8"))
    return {"directory": str(directory), "reward": results["config"].get("reward", "reviewer"), **results}


def compare(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per agent and reward: held-out K/Q, Vendi/Q and the IQM normalized score under its own reward."""
    packs = {run["pack_hash"] for run in runs}
    rewards = [run["reward"] for run in runs]
    if len(set(rewards)) != len(rewards):
        raise SystemExit(f"two runs with the same reward ({', '.join(rewards)}): give one run per reward")
    if len(packs) != 1:
        raise SystemExit(
            f"the runs were made on different packs ({', '.join(sorted(packs))}): not comparable"
        )
    agents = list(dict.fromkeys(agent for run in runs for agent in run["summary"][SPLIT]))
    rows = {}
    for agent in agents:
        rows[agent] = {}
        for run in runs:
            stats = run["summary"][SPLIT].get(agent)
            if stats is not None:
                rows[agent][run["reward"]] = {
                    "distinct_kept_per_query": stats.get("distinct_kept_per_query"),
                    "vendi_per_query": stats.get("vendi_per_query"),
                    "iqm": stats.get("iqm"),
                }
    return {"pack_hash": packs.pop(), "rewards": rewards, "agents": rows}


def report(comparison: dict[str, Any]) -> str:
    rewards = comparison["rewards"]
    headers = ["agent"] + [f"K/Q, trained on {r}" for r in rewards] + [f"Vendi/Q, {r}" for r in rewards]
    headers += [f"IQM normalized under {r}" for r in rewards]
    rows = []
    for agent, by_reward in comparison["agents"].items():
        cells = [_mean_ci(by_reward.get(r, {}).get("distinct_kept_per_query")) for r in rewards]
        cells += [_mean_ci(by_reward.get(r, {}).get("vendi_per_query")) for r in rewards]
        cells += [_iqm(by_reward.get(r, {}).get("iqm")) for r in rewards]
        rows.append([agent, *cells])
    return (
        f"Held-out seeds, pack {comparison['pack_hash'][:12]}; mean ± 95% CI over runs (one value for "
        "deterministic agents). K/Q: distinct kept instructions per expert query; Vendi/Q: their Vendi "
        "score per expert query. Every agent spends the same queries (one per step). The IQM normalized "
        "score is under the reward the agent was trained on (0 uniform, 1 that reward's optimum).\n\n"
        + markdown_table(headers, rows)
    )


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="+", type=Path, help="bench --pack output directories")
    args = parser.parse_args(argv)
    comparison = compare([load(directory) for directory in args.directories])
    text = report(comparison)
    print(text)
    return write_result("reward_comparison", comparison, f"# Rewards side by side\n\n{text}\n")


if __name__ == "__main__":
    main()
