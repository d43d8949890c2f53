"""How often the expert's rewrite is a valid instruction, how often it also adds information, and how
often the env pays for it (valid, Not Equal and, where the head has one, GOOD for its action), per
action, on bundled seeds, as judged by the env's reviewer (whose own accuracy is measured by
``teams-rl reviewer-bench``). By default the env's expert and reviewer: the specialist, and its
base model as the reviewer.

    python -m benchmarks.expert_rewrites                      # rewrite with the current expert
    python -m benchmarks.expert_rewrites --rewrites FILE.jsonl --name NAME   # judge saved rewrites

A rewrites file has one JSON object per line with ``before``, ``action`` (a name), ``after`` and
optionally ``cut_off``; the run writes the same format beside its results, so any two runs can be
compared on the same seeds.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from benchmarks.common import RESULTS_DIR, Timer, markdown_table, write_result
from teams_env.actions import ACTION_NAMES
from teams_env.engine import Rewrite, RewriteEngine
from teams_env.env_config import ENV_DEFAULTS
from teams_env.llm.base import GenerationParams
from teams_env.llm.registry import shared_backend, without_adapter
from teams_env.llm.service import LLMService
from teams_env.reward.reviewer import Reviewer
from teams_env.seeds import BUNDLED, load_seeds


def rewrite_seeds(seeds: list, engine: RewriteEngine) -> tuple[list[dict], float]:
    requests = [(seed.text, action) for seed in seeds for action in range(len(ACTION_NAMES))]
    with Timer() as timer:
        rewrites = engine.rewrite(requests)
    rows = [
        {
            "before": before,
            "action": ACTION_NAMES[action],
            "after": r.text,
            "failure": r.failure,
            "cut_off": r.cut_off,
        }
        for (before, action), r in zip(requests, rewrites)
    ]
    return rows, timer.seconds


def judge_rows(rows: list[dict], engine: RewriteEngine) -> list[dict]:
    """The env's own verdicts: failed rewrites (empty, unchanged) are invalid without a query."""
    pairs = [
        (row["before"], Rewrite(row["after"], row.get("failure"), bool(row.get("cut_off")))) for row in rows
    ]
    return [
        {
            **row,
            "valid": j.valid,
            "invalid_reason": j.invalid_reason,
            "not_equal": j.not_equal,
            "good": j.good,
            "paid": j.rewarded,
        }
        for row, j in zip(rows, engine.judge(pairs, [ACTION_NAMES.index(row["action"]) for row in rows]))
    ]


def summarise(judged: list[dict]) -> list[dict]:
    table = []
    for action in [*ACTION_NAMES, "all"]:
        rows = [r for r in judged if action in ("all", r["action"])]
        reasons = Counter(r["invalid_reason"] for r in rows if not r["valid"])
        table.append(
            {
                "action": action,
                "rewrites": len(rows),
                "valid": sum(r["valid"] for r in rows) / len(rows),
                "valid_and_not_equal": sum(r["valid"] and r["not_equal"] for r in rows) / len(rows),
                "paid": sum(r["paid"] for r in rows) / len(rows),
                "invalid_reasons": dict(reasons.most_common()),
            }
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expert", default=ENV_DEFAULTS.expert)
    parser.add_argument("--reviewer", default="", help="not set: the expert's model without an adapter")
    parser.add_argument("--every", type=int, default=5, help="take every k-th bundled seed")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--rewrites", default="", help="judge these saved rewrites instead of rewriting")
    parser.add_argument("--name", default="expert_rewrites")
    args = parser.parse_args()

    expert = shared_backend(args.expert)
    reviewer_backend = shared_backend(args.reviewer) if args.reviewer else without_adapter(expert)
    reviewer = Reviewer(LLMService(reviewer_backend, "reviewer"))
    engine = RewriteEngine(
        LLMService(expert, "expert"),
        reviewer,
        GenerationParams(max_new_tokens=args.max_new_tokens),
    )
    seconds = None
    if args.rewrites:
        rows = [json.loads(line) for line in Path(args.rewrites).read_text(encoding="utf-8").splitlines()]
    else:
        rows, seconds = rewrite_seeds(load_seeds(BUNDLED).seeds[:: args.every], engine)
        (RESULTS_DIR / f"{args.name}_rewrites.jsonl").write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
        )
    judged = judge_rows(rows, engine)
    table = summarise(judged)
    markdown = markdown_table(
        ["action", "rewrites", "valid", "valid and Not Equal", "paid", "invalid because"],
        [
            [
                r["action"],
                r["rewrites"],
                f"{r['valid']:.0%}",
                f"{r['valid_and_not_equal']:.0%}",
                f"{r['paid']:.0%}",
                ", ".join(f"{k} {v}" for k, v in r["invalid_reasons"].items()),
            ]
            for r in table
        ],
    )
    print(markdown)
    write_result(
        args.name,
        {
            "expert": args.expert,
            "reviewer": f"{args.reviewer or 'the expert without its adapter'} ({reviewer.method})",
            "rewrites_from": args.rewrites or f"{args.expert}, greedy, max_new_tokens={args.max_new_tokens}",
            "rewrite_seconds": seconds,
            "per_action": table,
            "examples": judged[:: max(1, len(judged) // 24)],
        },
        markdown,
    )


if __name__ == "__main__":
    main()
