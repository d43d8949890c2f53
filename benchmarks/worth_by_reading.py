"""What a dataset is worth by reading: GOOD instructions per expert query, beside the reviewer's count.

    python -m benchmarks.worth_by_reading export --bench benchmarks/results/prompted_pack/bench_pack_verdicts
    (readers label the blind files; teams-rl reading-merge DIR --labels A.jsonl,B.jsonl --by agent)
    python -m benchmarks.worth_by_reading report --bench benchmarks/results/prompted_pack/bench_pack_verdicts

``export`` takes the rewrites each agent's runs kept on the held-out seeds of a ``bench --pack`` run
(rewarded, valid, no leak), finds the step that wrote each (instruction before, action) in the pack,
samples up to ``--sample`` distinct ones per agent with a seed, and writes blind files for reading
(``BENCH/reading``). ``report`` joins the merged labels: per agent, the GOOD share of its kept
rewrites (95% Wilson interval) and GOOD per expert query = distinct kept per query x GOOD share,
beside the reviewer-counted distinct kept per query.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path
from typing import Any

from benchmarks.common import markdown_table
from teams_env.replay.pack import load_pack
from teams_rl.reading import export_blind, wilson_interval

AGENTS = ("uniform", "best-fixed", "trpo", "optimal")


def kept_steps(bench: Path, agents: tuple[str, ...], pack_spec: str = "") -> dict[str, list[dict[str, Any]]]:
    """Each agent's distinct kept held-out rewrites, as (instruction, action, rewrite) from the pack
    (the bench's own, or ``pack_spec`` where it has been renamed since)."""
    results = json.loads((bench / "results.json").read_text(encoding="utf-8"))
    pack = load_pack(pack_spec or results["config"]["pack"])
    recorded = str(pack.manifest.get("content_sha256", ""))
    if recorded != results["pack_hash"]:
        raise SystemExit(
            f"{bench / 'results.json'}: its runs are on pack content {results['pack_hash'][:12]}, but pack "
            f"'{pack_spec or results['config']['pack']}' is {recorded[:12]} (re-recorded or renamed): name its pack "
            "with --pack"
        )
    heldout = set(pack.split("heldout"))
    names = pack.manifest["action_names"]
    written: dict[str, list[tuple[str, str]]] = {}
    for node in pack.nodes.values():
        if node.seed_id in heldout and node.path and node.reward > 0:
            before = pack.node(node.seed_id, node.path[:-1]).state
            written.setdefault(node.instruction, []).append((before, names[node.path[-1]]))
    kept: dict[str, dict[str, dict[str, Any]]] = {agent: {} for agent in agents}
    with gzip.open(bench / "runs.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            run = json.loads(line)["result"]
            if run["agent"] not in kept:
                continue
            for text in run["heldout"]["kept"]:
                before, action = sorted(written[text])[0]
                kept[run["agent"]][text] = {
                    "agent": run["agent"],
                    "instruction": before,
                    "action": action,
                    "rewrite": text,
                }
    return {agent: sorted(rows.values(), key=lambda row: row["rewrite"]) for agent, rows in kept.items()}


def export(
    bench: Path, agents: tuple[str, ...], sample: int, seed: int, parts: int, pack_spec: str = ""
) -> None:
    items = []
    for agent, rows in kept_steps(bench, agents, pack_spec).items():
        chosen = random.Random(seed).sample(rows, min(sample, len(rows)))
        items.extend({**row, "distinct_kept_in_runs": len(rows)} for row in chosen)
        print(f"{agent}: {len(chosen)} of {len(rows)} distinct kept held-out rewrites sampled")
    paths = export_blind(items, bench / "reading", parts=parts, seed=seed)
    print(f"blind files: {', '.join(str(p) for p in paths)}")


def report(bench: Path) -> None:
    results = json.loads((bench / "results.json").read_text(encoding="utf-8"))
    heldout = results["summary"]["heldout"]
    labelled = [json.loads(line) for line in (bench / "reading" / "labelled.jsonl").read_text().splitlines()]
    summary = json.loads((bench / "reading" / "summary.json").read_text(encoding="utf-8"))
    rows = []
    for agent in dict.fromkeys(row["agent"] for row in labelled):
        labels = [row["label"] for row in labelled if row["agent"] == agent]
        good = labels.count("GOOD")
        share, (low, high) = good / len(labels), wilson_interval(good, len(labels))
        per_query = heldout[agent]["distinct_kept"]["mean"] / heldout[agent]["expert_queries"]["mean"]
        rows.append(
            {
                "agent": agent,
                "read": len(labels),
                "good_share": share,
                "good_share_interval": [low, high],
                "kept_per_query": per_query,
                "good_per_query": per_query * share,
                "good_per_query_interval": [per_query * low, per_query * high],
            }
        )
    markdown = markdown_table(
        ["agent", "read", "GOOD share [95%]", "kept / query (reviewer)", "GOOD / query [95%]"],
        [
            [
                r["agent"],
                r["read"],
                f"{r['good_share']:.0%} [{r['good_share_interval'][0]:.0%}, {r['good_share_interval'][1]:.0%}]",
                f"{r['kept_per_query']:.3f}",
                f"{r['good_per_query']:.3f} [{r['good_per_query_interval'][0]:.3f}, {r['good_per_query_interval'][1]:.3f}]",
            ]
            for r in rows
        ],
    )
    agreement = (
        f"{summary['double_labelled']} items double-labelled: agreement {summary['agreement']:.0%}, "
        f"Cohen's kappa {summary['kappa']:.2f}."
        if summary.get("kappa") is not None
        else "No item double-labelled."
    )
    text = (
        "# A dataset's worth by reading\n\n"
        f"Held-out seeds of `{results['config']['pack']}`, runs of `{bench}`. GOOD per query = the reviewer's "
        "distinct kept rewrites per expert query (mean over runs) x the GOOD share read blind in a sample "
        f"of them; its interval is the share's.\n\n{markdown}\n\n{agreement}\n"
    )
    (bench / "reading" / "worth.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    (bench / "reading" / "worth.md").write_text(text, encoding="utf-8")
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("export", "report"))
    parser.add_argument("--bench", required=True, help="a bench --pack output folder")
    parser.add_argument("--agents", default=",".join(AGENTS))
    parser.add_argument("--sample", type=int, default=120, help="kept rewrites read per agent (at most)")
    parser.add_argument("--parts", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pack", default="", help="the bench's pack where it has been renamed since (export)"
    )
    args = parser.parse_args()
    bench = Path(args.bench)
    if args.step == "export":
        export(
            bench,
            tuple(a.strip() for a in args.agents.split(",") if a.strip()),
            args.sample,
            args.seed,
            args.parts,
            args.pack,
        )
    else:
        report(bench)


if __name__ == "__main__":
    main()
