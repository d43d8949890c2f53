"""All performance benchmarks behind one command, summarised in one table.

    python -m benchmarks                 # run env_throughput and sft_throughput, then summarise
    python -m benchmarks --from-results  # only summarise the JSON files already in results/

Each benchmark runs in its own process, one after the other (side-by-side arms inside each run
share the machine state); the summary is written to results/summary.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from benchmarks.common import RESULTS_DIR, markdown_table, write_result

BENCHMARKS = ("env_throughput", "sft_throughput")
OVERHEAD_TARGET_MS = 1.0


def _load(name: str) -> dict[str, Any]:
    path = RESULTS_DIR / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing; run python -m benchmarks.{name} first")
    return json.loads(path.read_text(encoding="utf-8"))


def env_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for speed in result["throughput"]:
        rows.append(
            [
                f"env steps/s ({speed['backend']})",
                f"{speed['single_steps_per_s']:.2f} (1 env)",
                f"{speed['vector_steps_per_s']:.2f} (8 batched envs)",
                f"{speed['speedup']:.2f}x",
            ]
        )
    for review in result["reviewer"]:
        per = review["seconds_per_judgement"]
        rows.append(
            [
                f"reviewer s/verdict ({review['backend']})",
                f"{per['generated_free_form']:.3f} (generated verdict)",
                f"{per['likelihood']:.3f} (label likelihood)",
                f"{review['likelihood_cheaper_than']['generated_free_form']:.1f}x",
            ]
        )
    rerun = result["cached_rerun"]
    rows.append(
        [
            f"{rerun['steps']} env steps ({rerun['backend']})",
            f"{rerun['first_run_seconds']:.1f} s (uncached)",
            f"{rerun['rerun_seconds']:.2f} s (cached, {rerun['rerun_queries']} LLM calls)",
            f"{rerun['first_run_seconds'] / rerun['rerun_seconds']:.0f}x",
        ]
    )
    for own in result["overhead"]:
        verdict = "under" if own["ms_per_step"] < OVERHEAD_TARGET_MS else "OVER"
        rows.append(
            [
                f"non-LLM overhead per env step ({own['encoder']} encoder)",
                f"target {OVERHEAD_TARGET_MS:.0f} ms",
                f"{own['ms_per_step']:.3f} ms",
                f"{verdict} target",
            ]
        )
    return rows


def sft_rows(result: dict[str, Any]) -> list[list[str]]:
    by_cpu: dict[str, dict[str, dict[str, Any]]] = {}
    for arm in result["arms"]:
        by_cpu.setdefault(arm["cpu"], {})[arm["arm"]] = arm
    rows = []
    for cpu, arms in by_cpu.items():
        ours, trl = arms.get("teams-rl defaults"), arms.get("TRL defaults")
        if ours and trl:
            rows.append(
                [
                    f"SFT tokens/s ({cpu})",
                    f"{trl['tokens_per_second']:.1f} (TRL defaults)",
                    f"{ours['tokens_per_second']:.1f} (teams-rl defaults)",
                    f"{ours['tokens_per_second'] / trl['tokens_per_second']:.1f}x",
                ]
            )
    return rows


def summarise() -> str:
    results = {name: _load(name) for name in BENCHMARKS}
    env, sft = results["env_throughput"], results["sft_throughput"]
    table = markdown_table(["measure", "baseline", "ours", "ratio"], env_rows(env) + sft_rows(sft))
    dates = {name: result["date"] for name, result in results.items()}
    machine = env["machine"]
    markdown = (
        "# Performance summary\n\n"
        f"{table}\n\n"
        f"Machine: {machine['cpu']}, {machine['cores']} cores, accelerator: {machine['accelerator']}. "
        f"Measured {'; '.join(f'{name}: {date}' for name, date in dates.items())}; one run each, so "
        "ratios carry run-to-run noise of a few percent. "
        "Details, commands and versions: the JSON and Markdown file of each benchmark beside this one.\n"
    )
    write_result("summary", {"sources": dates}, markdown)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--from-results", action="store_true", help="summarise the results already on disk")
    args = parser.parse_args()
    if not args.from_results:
        for name in BENCHMARKS:
            print(f"== benchmarks.{name}", flush=True)
            subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], check=True)
    print(summarise())


if __name__ == "__main__":
    main()
