"""The model card (``README.md``) of a fine-tuned model: base, data and its statistics, the
hyperparameters, the result, and the command that reproduces it."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

from teams_rl.finetune.commands import SFTConfig

DATASET_STATS = "stats.json"
"""Written by the generation stage next to ``dataset.jsonl``; quoted in the card when present."""


def reproduce_command(config: SFTConfig) -> str:
    """``teams-rl sft`` with every option that differs from its default."""
    parts = ["teams-rl", "sft"]
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if value == item.default:
            continue
        flag = "--" + item.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else flag.replace("--", "--no-", 1))
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)


def _dataset_stats(data: Path) -> str:
    stats = data.parent / DATASET_STATS
    if not stats.is_file():
        return f"No `{DATASET_STATS}` next to the dataset."
    try:
        parsed = json.loads(stats.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"`{stats}` is not valid JSON."
    return f"From `{stats}`:\n\n```json\n{json.dumps(parsed, indent=2)}\n```"


def write_model_card(
    out: Path, *, config: SFTConfig, base_path: str, precision: str, summary: dict[str, Any]
) -> Path:
    data = Path(config.data).expanduser().resolve()
    hyperparameters = {
        name: getattr(config, name)
        for name in (
            "method",
            "preset",
            "epochs",
            "max_steps",
            "learning_rate",
            "lr_scheduler",
            "warmup_ratio",
            "batch_size",
            "gradient_accumulation",
            "max_length",
            "gradient_checkpointing",
            "assistant_only_loss",
            "seed",
        )
    }
    if config.method != "full":
        hyperparameters.update(
            {f"lora_{k}": getattr(config, f"lora_{k}") for k in ("rank", "alpha", "dropout", "targets")}
        )
    hyperparameters["precision"] = precision
    table = "\n".join(f"| {name} | {value} |" for name, value in hyperparameters.items())
    adapter_note = (
        "\nThe LoRA adapter is in `adapter/`; this folder holds the base with the adapter merged in.\n"
        if config.method != "full"
        else ""
    )
    card = f"""---
base_model: {config.base if config.base != "embedded" else "HuggingFaceTB/SmolLM2-135M-Instruct"}
library_name: transformers
tags: [teams-rl, trl, sft, {config.method}]
---

# {out.name}

Fine-tuned from `{config.base}` (`{base_path}`) with one supervised fine-tuning step on a
TeaMs-RL instruction dataset (TRL `SFTTrainer`, {config.method} fine-tuning).
{adapter_note}
## Data

- File: `{data}`
- Rows: {summary["rows"]}

{_dataset_stats(data)}

## Training

| hyperparameter | value |
| --- | --- |
{table}

## Result

- Optimizer steps: {summary["steps"]}
- Training loss: {summary["first_loss"]:.4f} at the first step, {summary["final_loss"]:.4f} at the last
  (mean {summary["train_loss"]:.4f}); per step in `training_log.json`, plotted in `loss_curve.png`
- Time: {summary["train_runtime_s"]:.1f} s, {summary["tokens_per_second"]:.0f} tokens/s

## Reproduce

```bash
{reproduce_command(config)}
```
"""
    path = out / "README.md"
    path.write_text(card, encoding="utf-8")
    return path
