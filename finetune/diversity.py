"""``teams-rl diversity``: diversity metrics of instruction files, one column per file.

Embedding measures use one sentence encoder for every file, so the columns are comparable.
"""

from __future__ import annotations

import json
from pathlib import Path

from finetune.config import DiversityConfig
from finetune.records import read_instructions
from teams_env.encoder import shared_encoder
from teams_env.metrics import diversity_summary

METRIC_LABELS = {
    "items": "instructions",
    "vendi_score": "Vendi score",
    "vendi_per_item": "Vendi score / instructions",
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


def format_table(columns: dict[str, dict[str, float]]) -> str:
    """A Markdown table: one row per metric, one column per file."""
    header = ["metric", *columns]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(columns)]
    for key, label in METRIC_LABELS.items():
        cells = [_cell(metrics[key]) for metrics in columns.values()]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def _cell(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def run(config: DiversityConfig) -> int:
    instructions = {path: read_instructions(path) for path in config.files}  # every file read before encoding
    for path, texts in instructions.items():
        if len(texts) < 2:
            raise ValueError(f"{path}: {len(texts)} instruction; diversity needs at least 2")
    encoder = shared_encoder(config.encoder)
    columns = {path: diversity_summary(texts, encoder.encode) for path, texts in instructions.items()}
    print(format_table(columns))
    print(f"\nencoder: {encoder.name}")
    if config.out:
        out = Path(config.out).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        report = {"encoder": encoder.name, "files": columns}
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"metrics written to {out}")
    return 0
