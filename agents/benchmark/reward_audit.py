"""What a reward pays for in a transition pack: reward rates per action and depth, samples of
rewarded rewrites with the judge's probabilities, the best fixed sequence against the optimum, and
how many rewarded rewrites are junk (:mod:`teams_env.reward.junk_rules`).

A reward an agent can farm with one junk-producing action is a reward an RL benchmark measures
nothing with (GitHub issue 18): read the audit before trusting a pack's ceilings. Every function
here returns plain data; :func:`write_audit` writes ``audit.md`` and ``audit.json``.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from teams_env.actions import ACTION_NAMES
from teams_env.replay.optimum import RewardOf, solve, uniform_returns
from teams_env.replay.pack import Node, Pack
from teams_env.reward.junk_rules import (
    BLOCK_KINDS,
    EXACT_DETECTORS,
    HEURISTIC_DETECTORS,
    added_data,
    junk_reasons,
)

SAMPLE_CHARS = 600
"""Texts in the markdown samples are cut to this length (the JSON keeps them whole)."""

DETECTORS = (*EXACT_DETECTORS, *HEURISTIC_DETECTORS)
NodeKey = tuple[str, tuple[int, ...]]


def reward_function(pack: Pack, reward: str) -> RewardOf:
    """The reward of each step of ``pack``: ``"reviewer"`` as recorded, or another reward of the
    replay env (``"novelty"``, ``"reviewer*novelty"``), computed as the env computes it."""
    if reward == "reviewer":
        # The replay env's reviewer reward is the recorded one; reading it needs no encoder.
        return lambda seed_id, path: pack.node(seed_id, path).reward
    from teams_env.replay.env import TeaMsInstructReplayEnv

    env = TeaMsInstructReplayEnv(pack=pack, action_type="discrete", observation="last_action", reward=reward)
    return env.transition_reward


def transitions(pack: Pack) -> Iterator[tuple[Node, str]]:
    """Every step of the pack as (the node it reached, the instruction it rewrote), in pack order."""
    for (seed_id, path), node in sorted(pack.nodes.items(), key=lambda item: (len(item[0][1]), item[0])):
        if path:
            yield node, pack.node(seed_id, path[:-1]).state


def _rate(rewarded: int, nodes: int) -> dict[str, Any]:
    return {"nodes": nodes, "rewarded": rewarded, "rate": rewarded / nodes if nodes else None}


def reward_rates(pack: Pack, rewards: dict[NodeKey, float]) -> dict[str, dict[str, dict[str, Any]]]:
    """Action name -> depth (``"1"``, ``"2"``, ..., ``"all"``) -> nodes, rewarded (reward > 0) and
    their rate; the action ``"all"`` sums the actions."""
    nodes: Counter[tuple[str, str]] = Counter()
    paid: Counter[tuple[str, str]] = Counter()
    for (_, path), value in rewards.items():
        for action in (ACTION_NAMES[path[-1]], "all"):
            for depth in (str(len(path)), "all"):
                nodes[(action, depth)] += 1
                paid[(action, depth)] += value > 0
    depths = [*map(str, range(1, pack.depth + 1)), "all"]
    return {
        action: {depth: _rate(paid[(action, depth)], nodes[(action, depth)]) for depth in depths}
        for action in (*ACTION_NAMES, "all")
    }


def _judge(info: dict[str, Any]) -> dict[str, Any]:
    """The judge's verdict and probabilities the pack recorded (``p_not_equal``, ``p_valid``, ...)."""
    return {
        key: value
        for key, value in sorted(info.items())
        if (key == "verdict" or key.startswith("p_")) and value is not None
    }


def rewarded_samples(
    pack: Pack, rewards: dict[NodeKey, float], per_action: int, seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Per action, ``per_action`` rewarded steps drawn at random (seeded): the instruction before,
    the rewrite, the reward, the judge's probabilities and the junk detectors that fire."""
    rng = random.Random(seed)
    paid: dict[str, list[tuple[Node, str]]] = {name: [] for name in ACTION_NAMES}
    for node, before in transitions(pack):
        if rewards[node.key] > 0:
            paid[ACTION_NAMES[node.path[-1]]].append((node, before))
    return {
        action: [
            {
                "seed_id": node.seed_id,
                "path": [ACTION_NAMES[a] for a in node.path],
                "before": before,
                "rewrite": node.instruction,
                "reward": rewards[node.key],
                "judge": _judge(node.info),
                "junk": junk_reasons(before, node.instruction, heuristics=True),
            }
            for node, before in rng.sample(steps, min(per_action, len(steps)))
        ]
        for action, steps in paid.items()
    }


def ceilings(pack: Pack, rewards: dict[NodeKey, float]) -> dict[str, Any]:
    """Over the pack's train seeds (all of them where it has no split: the seeds ``bench --pack``
    and ``train --pack`` choose the best fixed sequence on), to its depth, undiscounted: the best
    fixed action sequence, its mean return, the optimal and the uniform policy's mean returns, and
    the fixed sequence's share of the optimum, from uniform (0) to optimal (1) and from nothing."""
    split = "train" if "train" in pack.manifest.get("splits", {}) else "all"
    seeds = pack.split(split)

    def reward_of(seed_id: str, path: tuple[int, ...]) -> float:
        return rewards[(seed_id, path)]

    optimum = solve(reward_of, seeds, pack.n_actions, pack.depth, gamma=1.0)
    uniform = float(np.mean(list(uniform_returns(reward_of, seeds, pack.n_actions, pack.depth).values())))
    best, optimal = optimum.best_fixed_return, optimum.mean_value
    return {
        "split": split,
        "seeds": len(seeds),
        "horizon": pack.depth,
        "best_fixed": [ACTION_NAMES[a] for a in optimum.best_fixed],
        "best_fixed_return": best,
        "optimal_return": optimal,
        "uniform_return": uniform,
        "share_of_gap": (best - uniform) / (optimal - uniform) if optimal != uniform else None,
        "share_of_optimal": best / optimal if optimal else None,
    }


def junk_counts(pack: Pack, rewards: dict[NodeKey, float]) -> dict[str, Any]:
    """How many rewarded steps each junk detector flags (and their share of the rewarded steps),
    per action too; the reward rate of the steps it flags among all steps; the kinds of data the
    rewarded steps add; the demonstration phrases copied most."""
    fired: Counter[str] = Counter()
    paid: Counter[str] = Counter()
    per_action: dict[str, Counter[str]] = {name: Counter() for name in ACTION_NAMES}
    added: Counter[str] = Counter()
    leaks: Counter[str] = Counter()
    rewarded = 0
    for node, before in transitions(pack):
        reasons = junk_reasons(before, node.instruction, heuristics=True)
        kinds = added_data(before, node.instruction)
        flags = [*reasons, *(["added_data"] if kinds else [])]
        fired.update(flags)
        if rewards[node.key] <= 0:
            continue
        rewarded += 1
        paid.update(flags)
        per_action[ACTION_NAMES[node.path[-1]]].update(flags)
        added.update(kinds)
        if "demonstration_leak" in reasons:
            leaks[reasons["demonstration_leak"]] += 1
    names = (*DETECTORS, "added_data")
    return {
        "rewarded": rewarded,
        "detectors": {
            name: {
                "rewarded": paid[name],
                "share_of_rewarded": paid[name] / rewarded if rewarded else None,
                "fired": fired[name],
                "reward_rate_when_fired": paid[name] / fired[name] if fired[name] else None,
                "heuristic": name in HEURISTIC_DETECTORS,
            }
            for name in names
        },
        "per_action": {
            action: {name: counts[name] for name in names} for action, counts in per_action.items()
        },
        "added_kinds": {kind: added[kind] for kind in BLOCK_KINDS},
        "top_demonstration_leaks": [{"span": span, "count": count} for span, count in leaks.most_common(5)],
    }


Triple = tuple[str, str, str]
"""(instruction before, action name, rewrite): what a reader labels."""


def reading_shares(
    pack: Pack, rewards: dict[NodeKey, float], labels: dict[Triple, str]
) -> dict[str, dict[str, Any]]:
    """Per action (and ``all``), over the distinct rewarded steps that readers labelled
    (``labels``: the reading protocol's label of each triple), how many were GOOD, with a 95%
    Wilson interval on the share."""
    from teams_rl.agents.benchmark.statistics import wilson_interval

    labelled: dict[str, dict[Triple, str]] = {name: {} for name in ACTION_NAMES}
    for node, before in transitions(pack):
        triple = (before, ACTION_NAMES[node.path[-1]], node.instruction)
        if rewards[node.key] > 0 and triple in labels:
            labelled[triple[1]][triple] = labels[triple]
    labelled["all"] = {t: label for per_action in list(labelled.values()) for t, label in per_action.items()}
    shares = {}
    for action, found in labelled.items():
        good = sum(label == "GOOD" for label in found.values())
        low, high = wilson_interval(good, len(found)) if found else (None, None)
        shares[action] = {
            "labelled": len(found),
            "good": good,
            "good_share": good / len(found) if found else None,
            "low": low,
            "high": high,
        }
    return shares


def audit_pack(
    pack: Pack,
    *,
    reward: str = "reviewer",
    samples: int = 5,
    seed: int = 0,
    labels: dict[Triple, str] | None = None,
) -> dict[str, Any]:
    """The whole audit of ``pack`` under ``reward`` as plain data (what ``audit.json`` holds);
    ``labels``: readers' labels of (before, action, rewrite) triples, where there are some."""
    reward_of = reward_function(pack, reward)
    rewards = {node.key: float(reward_of(*node.key)) for node, _ in transitions(pack)}
    return {
        "pack": str(pack.directory),
        "content_sha256": pack.manifest.get("content_sha256"),
        "depth": pack.depth,
        "seeds": len(pack.seeds),
        "reward": reward,
        "nodes": len(rewards),
        "rewarded": sum(value > 0 for value in rewards.values()),
        "rates": reward_rates(pack, rewards),
        "ceilings": ceilings(pack, rewards),
        "junk": junk_counts(pack, rewards),
        "samples": rewarded_samples(pack, rewards, samples, seed),
        "sample_seed": seed,
        "reading": reading_shares(pack, rewards, labels) if labels else None,
    }


# -- the report ----------------------------------------------------------------------------


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _fenced(text: str) -> str:
    """``text`` in a code fence longer than any run of backticks inside it, so the text's own
    fences and tables cannot break the page; cut to :data:`SAMPLE_CHARS`."""
    if len(text) > SAMPLE_CHARS:
        text = text[:SAMPLE_CHARS] + f"\n[... {len(text) - SAMPLE_CHARS} more characters]"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _inline(snippet: str) -> str:
    """The first line of ``snippet`` as inline code, delimited by more backticks than it holds."""
    line = snippet.splitlines()[0] if snippet.strip() else snippet
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", line)), default=0) + 1)
    return f"{ticks} {line} {ticks}"


def rates_table(audit: dict[str, Any]) -> list[str]:
    """The reward rate per action and depth as Markdown table lines."""
    depths = [*map(str, range(1, audit["depth"] + 1)), "all"]
    lines = [
        "| action | " + " | ".join(f"depth {d}" if d != "all" else "all depths" for d in depths) + " |",
        "|---|" + "---|" * len(depths),
    ]
    for action, row in audit["rates"].items():
        cells = [f"{_share(row[d]['rate'])} ({row[d]['rewarded']}/{row[d]['nodes']})" for d in depths]
        lines.append(f"| {'**all**' if action == 'all' else action} | " + " | ".join(cells) + " |")
    return lines


def junk_tables(junk: dict[str, Any]) -> list[str]:
    """The junk detectors' counts among rewarded steps as Markdown table lines."""
    names = list(junk["detectors"])
    lines = [
        "| detector | rewarded steps it flags | share of rewarded | steps it flags | reward rate when it fires |",
        "|---|---|---|---|---|",
    ]
    for name, row in junk["detectors"].items():
        label = f"{name} (heuristic)" if row["heuristic"] else name
        lines.append(
            f"| {label} | {row['rewarded']} | {_share(row['share_of_rewarded'])} | {row['fired']} | "
            f"{_share(row['reward_rate_when_fired'])} |"
        )
    kinds = ", ".join(f"{kind} {count}" for kind, count in junk["added_kinds"].items())
    lines += [
        "",
        f"Data kinds the rewarded steps add: {kinds}.",
        "",
        "Rewarded steps flagged, per action:",
        "",
    ]
    lines += ["| action | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for action, counts in junk["per_action"].items():
        lines.append(f"| {action} | " + " | ".join(str(counts[name]) for name in names) + " |")
    if junk["top_demonstration_leaks"]:
        lines += ["", "Demonstration phrases copied most often (rewarded steps):", ""]
        lines += [f'- "{leak["span"]}": {leak["count"]}' for leak in junk["top_demonstration_leaks"]]
    return lines


def _reading_lines(reading: dict[str, dict[str, Any]] | None) -> list[str]:
    if not reading:
        return []
    lines = [
        "## What readers say of the rewarded steps",
        "",
        "Distinct rewarded steps whose (instruction, action, rewrite) readers labelled blind with the "
        "reading protocol (`docs/reading-protocol.md`), and the share they called GOOD (95% Wilson "
        "interval). Only labelled steps count: where labels were a stratified sample, read the share "
        "as the sample's.",
        "",
        "| action | labelled rewarded steps | GOOD | share |",
        "|---|---|---|---|",
    ]
    for action, row in reading.items():
        share = (
            "n/a"
            if row["good_share"] is None
            else f"{_share(row['good_share'])} [{_share(row['low'])}, {_share(row['high'])}]"
        )
        lines.append(f"| {action} | {row['labelled']} | {row['good']} | {share} |")
    return [*lines, ""]


def _sample_lines(action: str, samples: list[dict[str, Any]]) -> list[str]:
    lines = [f"### {action}", ""]
    if not samples:
        return [*lines, "No rewarded step.", ""]
    for number, sample in enumerate(samples, start=1):
        judge = ", ".join(
            f"{key} {_number(value)}" if isinstance(value, float) else f"{key} {value}"
            for key, value in sample["judge"].items()
        )
        junk = "; ".join(f"{name}: {_inline(snippet)}" for name, snippet in sample["junk"].items())
        lines += [
            f"**{number}.** seed `{sample['seed_id']}`, path {' → '.join(sample['path'])}; reward "
            f"{_number(sample['reward'])}; judge: {judge or 'n/a'}; junk: {junk or 'none found'}",
            "",
            "Before:",
            "",
            _fenced(sample["before"]),
            "",
            "Rewrite:",
            "",
            _fenced(sample["rewrite"]),
            "",
        ]
    return lines


def audit_markdown(audit: dict[str, Any]) -> str:
    """``audit.md``: the audit for a reader."""
    ceiling, junk = audit["ceilings"], audit["junk"]
    lines = [
        "# Pack audit: what the reward pays for",
        "",
        f"Pack: `{audit['pack']}` (content {str(audit['content_sha256'])[:12]}, depth {audit['depth']}, "
        f"{audit['seeds']} seeds); reward `{audit['reward']}`.  ",
        f"{audit['nodes']} steps, {audit['rewarded']} rewarded (reward > 0): "
        f"{_share(audit['rewarded'] / audit['nodes'] if audit['nodes'] else None)}.",
        "",
        "## Reward rate per action and depth",
        "",
        "Share of steps rewarded (rewarded / steps).",
        "",
        *rates_table(audit),
        "",
        "## Best fixed sequence against the optimum",
        "",
        (
            f"Over the {ceiling['seeds']} train seeds (where bench and train choose it), "
            if ceiling.get("split") == "train"
            else f"Over all {ceiling['seeds']} seeds, "
        )
        + f"horizon {ceiling['horizon']}, undiscounted.",
        "",
        "| policy | mean return |",
        "|---|---|",
        f"| uniform (expected) | {_number(ceiling['uniform_return'])} |",
        f"| best fixed: {', '.join(ceiling['best_fixed'])} | {_number(ceiling['best_fixed_return'])} |",
        f"| optimal | {_number(ceiling['optimal_return'])} |",
        "",
        f"The best fixed sequence reaches {_share(ceiling['share_of_gap'])} of the way from uniform to "
        f"optimal and {_share(ceiling['share_of_optimal'])} of the optimal return: a text-blind policy "
        "that learns it needs to read nothing.",
        "",
        "## Junk among the rewarded steps",
        "",
        "Detectors of `teams_env.reward.junk_rules`, counting only junk a step brought in (not junk the instruction "
        "before it already had). `unreferenced_data` is a heuristic (a word list); the others are exact.",
        "",
        *junk_tables(junk),
        "",
        *_reading_lines(audit.get("reading")),
        f"## Rewarded rewrites, {max(map(len, audit['samples'].values()), default=0)} per action at "
        f"random (seed {audit['sample_seed']})",
        "",
    ]
    for action, samples in audit["samples"].items():
        lines += _sample_lines(action, samples)
    return "\n".join(lines).rstrip() + "\n"


def write_audit(out_dir: str | Path, audit: dict[str, Any]) -> Path:
    """Write ``audit.json`` (everything) and ``audit.md`` (for a reader) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(json.dumps(audit, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "audit.md").write_text(audit_markdown(audit), encoding="utf-8")
    return out
