"""The README.md data card of a generated dataset: what it holds and what it cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_data_card(out: Path, stats: dict[str, Any]) -> Path:
    roles = stats["queries"]
    role_rows = "\n".join(
        f"| {role} | {u.get('queries', 0)} | {u.get('cache_hits', 0)} | {u.get('prompt_tokens', 0)} | "
        f"{u.get('completion_tokens', 0)} | {u.get('seconds', 0.0):.1f} |"
        for role, u in sorted(roles.items())
    )
    rule_rows = (
        "\n".join(f"| {rule} | {count} |" for rule, count in stats["rejected_by_rule"].items())
        or "| none | 0 |"
    )
    per_item = stats["expert_queries_per_kept_item"]
    skipped = stats["seeds"].get("skipped_while_loading", {})
    skipped_line = (
        f"; seed-file lines skipped: {', '.join(f'{reason} {n}' for reason, n in skipped.items())}"
        if skipped
        else ""
    )
    diversity = stats.get("diversity")
    diversity_lines = (
        "\n".join(f"- {name}: {value:.3f}" for name, value in diversity.items())
        if diversity
        else "- not measured"
    )
    text = f"""# Instruction dataset generated with teams-rl

Rewrites chosen by `{stats["policy"]}`, performed by `{stats["expert"]}`, judged by `{stats["reviewer"]}`,
answered by `{stats["responder"]}`.

- seeds: {stats["seeds"]["done"]} of {stats["seeds"]["loaded"]} done{skipped_line}
- items kept: **{stats["kept"]}** (`dataset.jsonl`, TRL `messages` format plus Alpaca fields)
- items eliminated: {stats["rejected"]} (`rejects.jsonl`, with the rule that removed each)
- expert queries per kept item (rewrites and answers): {f"{per_item:.2f}" if per_item is not None else "n/a"}
  (the paper reports about 2.0; WizardLM about 2.5): the requests the dataset needed, each counted
  once however it was answered; a resumed run does not count again what it repeated from the cache
- wall time: {stats["wall_seconds"]:.0f} s over {stats["runs"]} run(s)

## Eliminations

| rule | items |
|---|---|
{rule_rows}

## Queries (model calls; cache hits cost none)

| role | queries | cache hits | prompt tokens | output tokens | seconds |
|---|---|---|---|---|---|
{role_rows}

## Diversity of the kept instructions

{diversity_lines}

## Loading

```python
from datasets import load_dataset

dataset = load_dataset("json", data_files="{(out / "dataset.jsonl").as_posix()}", split="train")
```
"""
    path = out / "README.md"
    path.write_text(text, encoding="utf-8")
    return path
