"""``teams-rl diversity``: diversity metrics of instruction files, one column per file.

Embedding measures use one sentence encoder for every file, so the columns are comparable. The raw
Vendi score grows with the number of items, so files of different sizes are compared on random
subsets of one size (the smallest file's, or ``--subsample``): mean and 95% interval over the
subsets, and per item.
"""

from __future__ import annotations

import json
from pathlib import Path

from teams_env.encoder import shared_encoder
from teams_env.metrics import common_subsample_size, compared_diversity
from teams_rl.finetune.commands import DiversityConfig
from teams_rl.finetune.records import read_instructions

METRIC_LABELS = {
    "items": "instructions",
    "vendi_subsampled": "Vendi score, {size} random instructions ({resamples} subsets): mean [95% interval]",
    "vendi_subsampled_per_item": "Vendi score per instruction, {size} random instructions",
    "vendi_score": "Vendi score, raw (of all n instructions)",
    "vendi_per_item": "Vendi score, raw / instructions",
    "distinct_1": "distinct-1",
    "distinct_2": "distinct-2",
    "mean_pairwise_cosine_distance": "mean pairwise cosine distance",
    "mean_nearest_neighbour_distance": "mean nearest-neighbour distance",
    "words_mean": "words: mean",
    "words_std": "words: std",
    "words_min": "words: min",
    "words_median": "words: median",
    "words_max": "words: max",
}


def format_table(columns: dict[str, dict[str, float]], resamples: int) -> str:
    """A Markdown table: one row per metric, one column per file."""
    header = ["metric", *columns]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(columns)]
    size = next(iter(columns.values()))["vendi_subsample_size"]
    for key, label in METRIC_LABELS.items():
        cells = [_cell(key, metrics) for metrics in columns.values()]
        lines.append("| " + " | ".join([label.format(size=size, resamples=resamples), *cells]) + " |")
    return "\n".join(lines)


def _cell(key: str, metrics: dict[str, float]) -> str:
    value = metrics[key]
    if key == "vendi_subsampled":
        return f"{value:.4f} [{metrics['vendi_subsampled_low']:.4f}, {metrics['vendi_subsampled_high']:.4f}]"
    if key == "vendi_score":
        return f"{value:.4f} (n={metrics['items']})"
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def run(config: DiversityConfig) -> int:
    instructions = {path: read_instructions(path) for path in config.files}  # every file read before encoding
    for path, texts in instructions.items():
        if len(texts) < 2:
            raise ValueError(f"{path}: {len(texts)} instruction; diversity needs at least 2")
    size = common_subsample_size((len(texts) for texts in instructions.values()), config.subsample)
    encoder = shared_encoder(config.encoder)
    columns = compared_diversity(instructions, encoder.encode, size, config.resamples, config.seed)
    print(format_table(columns, config.resamples))
    print(
        f"\nencoder: {encoder.name}; size-controlled Vendi on {size} random instructions per file "
        f"({config.resamples} subsets, seed {config.seed}; a file of exactly {size} is one subset)"
    )
    if config.out:
        out = Path(config.out).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "encoder": encoder.name,
            "subsample": {"size": size, "resamples": config.resamples, "seed": config.seed},
            "files": columns,
        }
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"metrics written to {out}")
    return 0
