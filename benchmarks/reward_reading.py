"""What the reward pays for, on the expert's own rewrites: the labelled set of the judge's issue.

    python -m benchmarks.reward_reading rewrite    # the specialist's rewrites of the pack's seeds
    python -m benchmarks.reward_reading sample     # the stratified items to read (then reading-export)

``rewrite`` drives the env's default expert (the specialist) and reward over the shipped pack's
seeds, as the env does (``on_failure="revert"``): every action on every seed (depth 1), then one
seeded random (state, action) pair per seed at depth 2 and at depth 3, from the states the
env would be in. Each transition is one line of ``specialist_rewrites.jsonl`` with the env's reward
and verdict; the command appends per batch and skips what is there, so it resumes where it stopped.

``sample`` draws the items to read, distinct (instruction, action, rewrite) triples whose rewrite
reached the reviewer (no empty reply or copy), stratified by source, action, depth and the current
verdict: the specialist's rewrites, and the prompted expert's from the shipped pack. Both splits
are sampled; the pack's split (train / heldout) travels with every item, and only train items
may be fitted on or used to choose settings.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR
from teams_env.actions import ACTION_NAMES

FOLDER = RESULTS_DIR / "reward_reading"
REWRITES = FOLDER / "specialist_rewrites.jsonl"
BATCH = 48
DEEPER = {2: 1, 3: 1}
"""Seeded random (state, action) pairs per seed at depth 2 and 3."""


def _pack():
    from teams_env.replay.pack import shared_pack

    return shared_pack("default")


def _split_of(pack) -> dict[str, str]:
    return {seed: split for split, seeds in pack.manifest["splits"].items() for seed in seeds}


def _read(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file; none where it is not written yet."""
    from teams_rl.finetune.records import read_records

    return [row for _, row in read_records(path)] if path.is_file() else []


def _append(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def rewrite(seed: int = 0) -> None:
    """The specialist's transitions over the pack's seeds (see the module docstring)."""
    from tqdm.auto import tqdm

    from teams_env.env import TeaMsInstructEnv
    from teams_env.replay.pack import Node
    from teams_env.replay.recording import _children

    pack = _pack()
    split = _split_of(pack)
    seeds_file = FOLDER / "pack_seeds.jsonl"
    FOLDER.mkdir(parents=True, exist_ok=True)
    seeds_file.write_text(
        "".join(json.dumps({"id": s["id"], "instruction": s["text"]}) + "\n" for s in pack.manifest["seeds"]),
        encoding="utf-8",
    )
    env = TeaMsInstructEnv(seeds=str(seeds_file), action_type="discrete", max_steps=3, on_failure="revert")
    done = {(row["seed_id"], tuple(row["path"])): row for row in _read(REWRITES)}
    rng = random.Random(seed)
    frontier = [Node(s["id"], (), s["text"], s["text"]) for s in pack.manifest["seeds"]]
    n_actions = len(ACTION_NAMES)
    plan: list[list[tuple[Node, int]]] = [[(node, a) for node in frontier for a in range(n_actions)]]
    bar = tqdm(desc="specialist rewrites", unit="rewrite")
    for depth in (1, 2, 3):
        todo = [(node, a) for node, a in plan[-1] if (node.seed_id, (*node.path, a)) not in done]
        for start in range(0, len(todo), BATCH):
            children, _ = _children(env, todo[start : start + BATCH])
            rows = [
                {
                    "seed_id": child.seed_id,
                    "split": split[child.seed_id],
                    "path": list(child.path),
                    "depth": len(child.path),
                    "action": ACTION_NAMES[child.path[-1]],
                    "instruction": parent.state,
                    "rewrite": child.instruction,
                    "state": child.state,
                    "reward": child.reward,
                    **{
                        k: child.info.get(k)
                        for k in (
                            "verdict",
                            "valid",
                            "invalid_reason",
                            "p_not_equal",
                            "p_valid",
                            "rewrite_failure",
                            "rewrite_cut_off",
                        )
                    },
                }
                for (parent, _), child in zip(todo[start : start + BATCH], children)
            ]
            _append(REWRITES, rows)
            done.update({(row["seed_id"], tuple(row["path"])): row for row in rows})
            bar.update(len(rows))
        if depth == 3:
            break
        # The next depth: seeded random pairs from the states this depth left (as the env would).
        by_seed: dict[str, list[Node]] = defaultdict(list)
        for node, a in plan[-1]:
            row = done[(node.seed_id, (*node.path, a))]
            by_seed[node.seed_id].append(Node(node.seed_id, (*node.path, a), row["rewrite"], row["state"]))
        nxt = []
        for seed_id in sorted(by_seed):
            for node in rng.sample(by_seed[seed_id], min(DEEPER[depth + 1], len(by_seed[seed_id]))):
                nxt.append((node, rng.randrange(n_actions)))
        plan.append(nxt)
    bar.close()


PROMPTED_PER_STRATUM = {"train": 13, "heldout": 21}
"""Prompted-expert items per stratum: (action, depth, rewarded) on train seeds, (action, rewarded)
on held-out seeds."""


def _item(
    source: str, split: str, seed_id: str, depth: int, action: str, before: str, row: dict[str, Any]
) -> dict[str, Any]:
    return {
        "source": source,
        "split": split,
        "seed_id": seed_id,
        "depth": depth,
        "action": action,
        "instruction": before,
        "rewrite": row["rewrite"],
        "rewarded": bool(row["reward"] > 0),
        "verdict": row["verdict"],
        "invalid_reason": row["invalid_reason"],
        "p_not_equal": row["p_not_equal"],
        "p_valid": row["p_valid"],
    }


def prompted_items(seed: int = 0) -> list[dict[str, Any]]:
    """A stratified sample of the prompted expert's distinct rewrites in the shipped pack, each item
    with its stratum's size (to weight a share back to the pack)."""
    pack = _pack()
    split = _split_of(pack)
    strata: dict[tuple, dict[tuple[str, str, str], dict[str, Any]]] = defaultdict(dict)
    for node in pack.nodes.values():
        if not node.path or node.info.get("rewrite_failure") is not None:
            continue
        parent = pack.nodes[(node.seed_id, node.path[:-1])]
        action = ACTION_NAMES[node.path[-1]]
        row = {"rewrite": node.instruction, "reward": node.reward, **node.info}
        item = _item("prompted", split[node.seed_id], node.seed_id, len(node.path), action, parent.state, row)
        depth_key = item["depth"] if item["split"] == "train" else 0
        key = (item["split"], action, depth_key, item["rewarded"])
        strata[key].setdefault((parent.state, action, node.instruction), item)
    rng = random.Random(seed)
    items = []
    for key in sorted(strata):
        distinct = list(strata[key].values())
        for item in rng.sample(distinct, min(PROMPTED_PER_STRATUM[key[0]], len(distinct))):
            items.append({**item, "stratum_size": len(distinct)})
    return items


def specialist_items(depths: tuple[int, ...]) -> list[dict[str, Any]]:
    """Every distinct specialist rewrite at ``depths`` that reached the reviewer (stratum size 1:
    no sampling)."""
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in _read(REWRITES):
        if row["rewrite_failure"] is None and row["depth"] in depths:
            item = _item(
                "specialist",
                row["split"],
                row["seed_id"],
                row["depth"],
                row["action"],
                row["instruction"],
                row,
            )
            seen.setdefault(
                (item["instruction"], item["action"], item["rewrite"]), {**item, "stratum_size": 1}
            )
    return list(seen.values())


SOURCES = {"prompted": (), "specialist": (1,), "specialist_deeper": (2, 3)}
"""Item folders: the prompted expert's sample, and the specialist's rewrites at depth 1 and deeper
(read in two rounds, as the rewrites came)."""


def sample(source: str) -> None:
    items = prompted_items() if source == "prompted" else specialist_items(SOURCES[source])
    out = FOLDER / source / "items.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")
    print(f"{len(items)} {source} items -> {out}")


EVALUATION_SETS = {
    "specialist, pack held-out seeds": ("reward_reading/specialist", "specialist", "heldout"),
    "specialist, benchmark instructions": ("specialist_expert_reading_epoch2", "specialist", None),
    "prompted, pack held-out seeds": ("reward_reading/prompted", "prompted", "heldout"),
    "prompted, benchmark instructions": ("specialist_expert_reading", "prompted", None),
    "specialist, pack train seeds (fitted)": ("reward_reading/specialist", "specialist", "train"),
    "prompted, pack train seeds (fitted)": ("reward_reading/prompted", "prompted", "train"),
}
"""Labelled sets the judges are measured on: (folder under results/, expert, pack split). The
held-out ones were never fitted on nor used to choose a setting; the train ones are shown to
compare with (the GOOD head was fitted on them)."""
JUDGES = {"before": "pairs-v1", "after": "bundled"}


def _labelled(folder: str, expert: str, split: str | None) -> list[dict[str, Any]]:
    rows = [r for r in _read(RESULTS_DIR / folder / "labelled.jsonl") if r.get("label")]
    rows = [r for r in rows if r.get("expert", r.get("source", expert)) == expert]
    rows = [r for r in rows if split is None or r.get("split") == split]
    distinct: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        distinct.setdefault((row["instruction"], row["action"], row["rewrite"]), row)
    return list(distinct.values())


def _cut_offs() -> dict[tuple[str, str, str], bool]:
    """Whether each known rewrite hit the token limit (the env refuses those by rule)."""
    from teams_rl.agents.benchmark.reward_audit import transitions

    found = {
        (before, ACTION_NAMES[node.path[-1]], node.instruction): bool(node.info.get("rewrite_cut_off"))
        for node, before in transitions(_pack())
    }
    for row in _read(REWRITES):
        found[(row["instruction"], row["action"], row["rewrite"])] = bool(row["rewrite_cut_off"])
    for row in _read(RESULTS_DIR / "specialist_expert_items.jsonl"):
        found[(row["instruction"], row["action"], row["rewrite"])] = bool(row["cut_off"])
    return found


def judge_rows(rows: list[dict[str, Any]], head: str, cut_offs: dict) -> list[dict[str, Any]]:
    """Each row with the judge's score (P(GOOD), or P(Not Equal) x P(valid) for a head without a
    GOOD head; 0 where a rule refuses it) and whether the env would pay for it."""
    from teams_env.llm.cache import open_cache
    from teams_env.llm.registry import shared_backend
    from teams_env.llm.service import LLMService
    from teams_env.reward.reviewer import Reviewer
    from teams_rl.reviewer_bench import reward_score

    reviewer = Reviewer(
        LLMService(shared_backend("llamacpp"), "reviewer", cache=open_cache("auto")), method="head", head=head
    )
    judged = []
    for start in range(0, len(rows), 64):
        batch = rows[start : start + 64]
        judgements = reviewer.judge(
            [(r["instruction"], r["rewrite"]) for r in batch],
            cut_off=[cut_offs.get((r["instruction"], r["action"], r["rewrite"]), False) for r in batch],
            actions=[ACTION_NAMES.index(r["action"]) for r in batch],
        )
        for row, j in zip(batch, judgements):
            score = reward_score(j)
            judged.append(
                {
                    **row,
                    "score": float(score),
                    "paid": bool(j.rewarded),
                    "refused_by": j.invalid_reason if j.method == "rule" else None,
                }
            )
    return judged


def measure(judged: list[dict[str, Any]]) -> dict[str, Any]:
    """The GOOD share, and the judge's AUC, precision and recall for GOOD
    (:func:`~teams_rl.reviewer_bench.paid_for`), weighted to the pack where the items were a
    stratified sample (``stratum_size``)."""
    import numpy as np

    from teams_rl.reviewer_bench import paid_for

    good = np.array([r["label"] == "GOOD" for r in judged], dtype=bool)
    paid = np.array([r["paid"] for r in judged], dtype=bool)
    weight = np.array([float(r.get("stratum_size", 1)) for r in judged])
    return {
        "items": len(judged),
        "good": int(good.sum()),
        "paid": int(paid.sum()),
        "good_share": float((weight * good).sum() / weight.sum()) if len(judged) else None,
        **paid_for(good, paid, np.array([r["score"] for r in judged]), weight),
    }


def report() -> None:
    from benchmarks.common import write_result

    cut_offs = _cut_offs()
    payload: dict[str, Any] = {"judges": JUDGES, "sets": {}}
    for name, (folder, expert, split) in EVALUATION_SETS.items():
        rows = _labelled(folder, expert, split)
        payload["sets"][name] = {"folder": folder, "expert": expert, "split": split}
        for when, head in JUDGES.items():
            judged = judge_rows(rows, head, cut_offs)
            per_action = {a: measure([r for r in judged if r["action"] == a]) for a in ACTION_NAMES}
            payload["sets"][name][when] = {"all": measure(judged), "per_action": per_action}
    write_result("reward_reading", payload, _markdown(payload))


def _fmt(value: float | None, interval: tuple[float, float] | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")


def _cells(m: dict[str, Any]) -> list[Any]:
    """Items, GOOD, paid, AUC, precision and recall of a :func:`measure` result, for a table."""
    return [
        m["items"],
        m["good"],
        m["paid"],
        _fmt(m["roc_auc"]),
        _fmt(m["precision"], m["precision_interval"]),
        _fmt(m["recall"], m["recall_interval"]),
    ]


def _markdown(payload: dict[str, Any]) -> str:
    from benchmarks.common import markdown_table

    lines = [
        "# What the reward pays for, against blind readers",
        "",
        "The env's judge before (`pairs-v1`: the review head fitted on the written pair sets A and B) "
        "and after (`bundled`: the same heads plus a GOOD head fitted on the expert's own labelled "
        "rewrites of the pack's train seeds, and the judge rules). Score: P(GOOD), or "
        "P(Not Equal) x P(valid) without a GOOD head (0 where a rule refuses). Precision and recall of "
        "what the env pays, weighted to the pack where the items were a stratified sample; 95% Wilson "
        "intervals on the counts.",
        "",
    ]
    headers = ["set", "judge", "items", "GOOD", "paid", "AUC", "precision", "recall"]
    table = []
    for name, entry in payload["sets"].items():
        for when in JUDGES:
            table.append([name, f"{when} ({JUDGES[when]})", *_cells(entry[when]["all"])])
    lines += [markdown_table(headers, table), ""]
    for name, entry in payload["sets"].items():
        lines += [f"## {name}: per action, after", ""]
        rows = [[action, *_cells(m)] for action, m in entry["after"]["per_action"].items()]
        lines += [markdown_table(["action", "items", "GOOD", "paid", "AUC", "precision", "recall"], rows), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=["rewrite", "sample", "report"])
    parser.add_argument("--source", choices=list(SOURCES), default="specialist")
    args = parser.parse_args()
    if args.stage == "rewrite":
        rewrite()
    elif args.stage == "sample":
        sample(args.source)
    else:
        report()


if __name__ == "__main__":
    main()
