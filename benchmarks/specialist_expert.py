"""The specialist expert against the prompted one, on held-out instructions no demonstration touched.

    python -m benchmarks.specialist_expert                         # rewrite with both experts
    python -m benchmarks.specialist_expert --experts specialist    # rerun one (the other's rows kept)

Each expert applies every action to each held-out instruction (depth 1), then every action to its
own depth-1 rewrite by the next action (depth 2: a rewrite of a rewrite). Measured here: copies
and empty replies per action on long instructions (40+ words) and on instructions with input data,
and rewrites per second (the depth-1 requests as one batch, no cache, both experts in one run). The
rewrites go to ``specialist_expert_items.jsonl`` for blind reading (``teams-rl reading-export``);
GOOD shares come from the readers' labels (``--labels DIR``: a folder ``reading-merge`` filled).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, Timer, command_line, markdown_table, write_result
from teams_env.actions import ACTION_NAMES
from teams_env.engine import RewriteEngine
from teams_env.env_config import ENV_DEFAULTS
from teams_env.llm.base import GenerationParams
from teams_env.llm.registry import shared_backend
from teams_env.llm.service import LLMService

HELDOUT = Path(__file__).with_name("specialist_heldout.jsonl")
NAME = "specialist_expert"
ITEMS = RESULTS_DIR / f"{NAME}_items.jsonl"
EXPERTS = {"prompted": "llamacpp", "specialist": "specialist"}


def rewrite_with(name: str, spec: str, heldout: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    engine = RewriteEngine(
        LLMService(shared_backend(spec), "expert"),
        None,
        GenerationParams(max_new_tokens=ENV_DEFAULTS.max_new_tokens),
    )
    actions = range(len(ACTION_NAMES))
    first = [(item["instruction"], a) for item in heldout for a in actions]
    engine.rewrite(first[:1])  # load and warm the model outside the timed batch
    with Timer() as timer:
        depth1 = engine.rewrite(first)
    rows: list[dict[str, Any]] = []
    d1 = {}
    for index, ((instruction, action), rewrite) in enumerate(zip(first, depth1)):
        item = heldout[index // len(ACTION_NAMES)]
        d1[(item["id"], action)] = rewrite
        rows.append(_row(name, item, 1, instruction, action, rewrite))
    second = [(d1[(item["id"], (a + 1) % len(ACTION_NAMES))].text, a) for item in heldout for a in actions]
    for index, ((instruction, action), rewrite) in enumerate(zip(second, engine.rewrite(second))):
        rows.append(_row(name, heldout[index // len(ACTION_NAMES)], 2, instruction, action, rewrite))
    return rows, len(first) / timer.seconds


def _row(
    expert: str, item: dict[str, Any], depth: int, before: str, action: int, rewrite: Any
) -> dict[str, Any]:
    return {
        "expert": expert,
        "depth": depth,
        "heldout_id": item["id"],
        "kind": item["kind"],
        "action": ACTION_NAMES[action],
        "instruction": before,
        "rewrite": rewrite.text,
        "failure": rewrite.failure,
        "cut_off": rewrite.cut_off,
    }


def _identity(row: dict[str, Any]) -> tuple:
    return (row["expert"], row["depth"], row["instruction"], row["action"], row["rewrite"])


def failure_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies plus empty replies per expert and action, at depth 1, on long and on data instructions."""
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row["depth"] != 1 or row["kind"] == "short":
            continue
        for key in ((row["expert"], row["kind"], row["action"]), (row["expert"], row["kind"], "all")):
            counts[key][0] += row["failure"] is not None
            counts[key][1] += 1
    return [
        {"expert": e, "kind": k, "action": a, "failed": f, "n": n, "share": f / n}
        for (e, k, a), (f, n) in sorted(counts.items())
    ]


def good_table(folders: list[Path], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GOOD share per expert, depth and action: each of this run's rows with its label from the
    reading folders (``reading-merge`` output), matched on expert, depth, instruction, action and
    rewrite, so labels of another run's rewrites never count. Every row must have one."""
    labels = {}
    for folder in folders:
        for line in (folder / "labelled.jsonl").read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            labels[_identity(item)] = item["label"]
    unread = [row for row in rows if _identity(row) not in labels]
    if unread:
        raise SystemExit(
            f"{len(unread)} rewrites have no label in {', '.join(map(str, folders))}; read them first"
        )
    counts: dict[tuple[str, int, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        for action in (row["action"], "all"):
            counts[(row["expert"], row["depth"], action)][0] += labels[_identity(row)] == "GOOD"
            counts[(row["expert"], row["depth"], action)][1] += 1
    from teams_rl.reading import wilson_interval

    return [
        {
            "expert": e,
            "depth": d,
            "action": a,
            "good": g,
            "n": n,
            "share": g / n,
            "interval": wilson_interval(g, n),
        }
        for (e, d, a), (g, n) in sorted(counts.items())
    ]


def before_after(payload: dict[str, Any]) -> str:
    """The headline table: GOOD at depth 1 and 2, copies plus empty replies on long and on data
    instructions, per action, prompted beside specialist."""
    good = {(r["expert"], r["depth"], r["action"]): f"{r['good']}/{r['n']}" for r in payload.get("good", [])}
    failed = {
        (r["expert"], r["kind"], r["action"]): f"{r['failed']}/{r['n']}"
        for r in payload["copies_and_empties"]
    }
    rows = []
    for action in [*ACTION_NAMES, "all"]:
        cells = [action]
        for table, keys in ((good, (1, 2)), (failed, ("long", "data"))):
            for key in keys:
                cells += [
                    table.get(("prompted", key, action), "-"),
                    table.get(("specialist", key, action), "-"),
                ]
        rows.append(cells)
    return markdown_table(
        [
            "action",
            "GOOD depth 1: prompted",
            "specialist",
            "GOOD depth 2: prompted",
            "specialist",
            "copies+empty, 40+ words: prompted",
            "specialist",
            "copies+empty, with data: prompted",
            "specialist",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--experts", default="prompted,specialist", help="which of: prompted, specialist; empty: report only"
    )
    parser.add_argument("--specialist", default="specialist", help="the specialist's backend spec")
    parser.add_argument(
        "--labels", default="", help="reading folders with labelled.jsonl (reading-merge), comma-separated"
    )
    args = parser.parse_args()
    heldout = [json.loads(line) for line in HELDOUT.read_text(encoding="utf-8").splitlines()]
    previous = RESULTS_DIR / f"{NAME}.json"
    payload: dict[str, Any] = json.loads(previous.read_text(encoding="utf-8")) if previous.is_file() else {}
    for key in ("benchmark", "date", "command", "machine"):  # this run's, written below
        payload.pop(key, None)
    kept = (
        [json.loads(line) for line in ITEMS.read_text(encoding="utf-8").splitlines()]
        if ITEMS.is_file()
        else []
    )
    speed: dict[str, float] = dict(payload.get("rewrites_per_second", {}))
    names = [name.strip() for name in args.experts.split(",") if name.strip()]
    specs = {**EXPERTS, "specialist": args.specialist}
    rows = [row for row in kept if row["expert"] not in names]
    if names:  # which run wrote (and timed) which expert's rows
        payload.setdefault("rewrite_runs", []).append(
            {"command": command_line(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "experts": names}
        )
    for name in names:
        new_rows, speed[name] = rewrite_with(name, specs[name], heldout)
        rows.extend(new_rows)
        print(f"{name}: {speed[name]:.2f} rewrites/s")
    ITEMS.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    failures = failure_table(rows)
    payload.update(
        heldout=str(HELDOUT.relative_to(HELDOUT.parent.parent)),
        experts={name: specs[name] for name in speed},
        rewrites_per_second=speed,
        speed_ratio_specialist_over_prompted=(
            speed["specialist"] / speed["prompted"] if {"specialist", "prompted"} <= speed.keys() else None
        ),
        speed_note=payload.get("speed_note")
        if not names
        else (
            "both experts timed in one run"
            if len(names) == 2
            else f"{', '.join(names)} timed in a separate run"
        ),
        copies_and_empties=failures,
    )
    markdown = "## Copies plus empty replies at depth 1\n\n" + markdown_table(
        ["expert", "instructions", "action", "copies + empties"],
        [
            [r["expert"], r["kind"], r["action"], f"{r['failed']}/{r['n']} ({r['share']:.0%})"]
            for r in failures
        ],
    )
    if args.labels:
        folders = [Path(folder) for folder in args.labels.split(",")]
        payload["good"] = good_table(folders, rows)
        payload["reading"] = {}
        for folder in folders:
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
            summary.pop("table", None)
            payload["reading"][str(folder)] = summary
        markdown = (
            "## GOOD share, read blind\n\n"
            + markdown_table(
                ["expert", "depth", "action", "GOOD", "95% interval"],
                [
                    [
                        r["expert"],
                        r["depth"],
                        r["action"],
                        f"{r['good']}/{r['n']} ({r['share']:.0%})",
                        f"[{r['interval'][0]:.0%}, {r['interval'][1]:.0%}]",
                    ]
                    for r in payload["good"]
                ],
            )
            + "\n\n"
            + markdown
        )
    speed_line = ", ".join(f"{k} {v:.2f}" for k, v in speed.items())
    markdown = (
        f"Rewrites per second (depth-1 batch; {payload['speed_note']}): {speed_line}\n\n"
        + before_after(payload)
        + "\n\n"
        + markdown
    )
    print(markdown)
    write_result(NAME, payload, markdown)


if __name__ == "__main__":
    main()
