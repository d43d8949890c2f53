"""The reading protocol's two commands (``docs/reading-protocol.md``): export blind files for readers,
then merge their labels back and report GOOD shares with intervals and Cohen's kappa.

``teams-rl reading-export ITEMS.jsonl --out DIR``: items are JSON lines with ``instruction``,
``action`` and ``rewrite`` plus any fields to report by (expert, depth, verdict, ...), or the rows
of a generated ``dataset.jsonl``. Identical
triples are read once. The readers' files (``DIR/blind_N.jsonl``) hold id, action, instruction and
rewrite only, shuffled with a seed; the key (``DIR/key.jsonl``) holds everything else.

``teams-rl reading-merge DIR --labels A.jsonl,B.jsonl``: label files have ``{"id", "label"}`` lines.
The first file that labels an id gives its label; ids labelled in two files give the agreement and
Cohen's kappa. Writes ``DIR/labelled.jsonl`` (every item with its label) and ``DIR/summary.json``.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teams_env.options import option
from teams_rl.agents.benchmark.statistics import wilson_interval
from teams_rl.finetune.records import read_records

LABELS = ("GOOD", "SAME", "DRIFT", "ANSWER", "JUNK")
BLIND_FIELDS = ("id", "action", "instruction", "rewrite")
KEY_FILE = "key.jsonl"


@dataclass
class ReadingExportConfig:
    items: str = option(
        "",
        "JSONL of items to read: instruction, action, rewrite and fields to report by; or a generated dataset.jsonl",
    )
    out: str = option("", "output folder: blind_N.jsonl for readers, key.jsonl kept from them")
    parts: int = option(1, "blind files to split the distinct triples into (one per reader's sitting)")
    seed: int = option(0, "seed of the shuffle")

    def validate(self) -> None:
        if not self.items or not self.out:
            raise ValueError("items and --out are required: teams-rl reading-export ITEMS.jsonl --out DIR")
        if self.parts < 1:
            raise ValueError(f"parts must be at least 1, got {self.parts}")


@dataclass
class ReadingMergeConfig:
    folder: str = option("", "the folder reading-export wrote (its key.jsonl)")
    labels: list[str] = option([], "label files, JSONL of id and label; the first to label an id decides")
    by: list[str] = option(["action"], "item fields to report GOOD shares by")

    def validate(self) -> None:
        if not self.folder or not self.labels:
            raise ValueError(
                "a folder and --labels are required: teams-rl reading-merge DIR --labels A.jsonl"
            )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [row for _, row in read_records(path)]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    staging = path.with_name(path.name + ".partial")
    staging.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    staging.replace(path)


def as_item(row: dict[str, Any]) -> dict[str, Any]:
    """A row to read: an item as it is, or a generated dataset's row (``teams-rl generate``: its
    ``instruction`` is the rewrite of ``previous_instruction``)."""
    if "messages" in row and "previous_instruction" in row:
        return {
            **{k: v for k, v in row.items() if k not in ("messages", "output", "instruction", "input")},
            "instruction": row["previous_instruction"],
            "rewrite": row["instruction"],
        }
    return row


def export_blind(items: list[dict[str, Any]], out: Path, *, parts: int = 1, seed: int = 0) -> list[Path]:
    """Blind files of the distinct (instruction, action, rewrite) triples of ``items`` and the key."""
    triples: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for number, item in enumerate(map(as_item, items), start=1):
        for field in ("instruction", "action", "rewrite"):
            if not isinstance(item.get(field), str):
                raise ValueError(f"item {number}: '{field}' must be a string")
        triples[(item["instruction"], item["action"], item["rewrite"])].append(item)
    order = list(triples)
    random.Random(seed).shuffle(order)
    out.mkdir(parents=True, exist_ok=True)
    key, blind = [], []
    for number, triple in enumerate(order):
        item_id = f"r{number:05d}"
        blind.append(dict(zip(BLIND_FIELDS, (item_id, triple[1], triple[0], triple[2]))))
        for item in triples[triple]:
            key.append({"id": item_id, **item})
    _write_jsonl(out / KEY_FILE, key)
    paths = []
    for part in range(parts):
        path = out / f"blind_{part + 1}.jsonl"
        _write_jsonl(path, blind[part::parts])
        paths.append(path)
    return paths


def labelled_rows(paths: list[str]) -> list[dict[str, Any]]:
    """The labelled rows of readers' merged files (``reading-merge``'s ``labelled.jsonl``), in
    order; rows not read yet are skipped, and a row without instruction, action, rewrite or a
    known label is a one-line error naming its file and line."""
    rows = []
    for path in paths:
        for where, row in read_records(Path(path).expanduser()):
            if row.get("label") is None:
                continue
            if row["label"] not in LABELS or not all(
                isinstance(row.get(field), str) for field in ("instruction", "action", "rewrite")
            ):
                raise ValueError(
                    f"{where}: a labelled row needs instruction, action, rewrite and a label ({', '.join(LABELS)})"
                )
            rows.append(row)
    return rows


def cohen_kappa(first: list[str], second: list[str]) -> float:
    """Cohen's kappa of two readers' labels of the same items."""
    if len(first) != len(second) or not first:
        raise ValueError("kappa needs two equally long, non-empty label lists")
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second)) / n
    counts_a, counts_b = Counter(first), Counter(second)
    expected = sum(counts_a[label] * counts_b[label] for label in set(first) | set(second)) / n**2
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def read_labels(paths: list[Path]) -> list[dict[str, str]]:
    """Each file's labels by id; a label outside the rubric's is an error naming file and line."""
    files = []
    for path in paths:
        labels: dict[str, str] = {}
        for where, row in read_records(path):
            label = str(row.get("label", "")).strip().upper()
            if label not in LABELS or "id" not in row:
                raise ValueError(f"{where}: needs an id and a label, one of {', '.join(LABELS)}")
            labels[str(row["id"])] = label
        files.append(labels)
    return files


def merge_labels(folder: Path, label_files: list[Path], by: list[str]) -> dict[str, Any]:
    key = _read_jsonl(folder / KEY_FILE)
    files = read_labels(label_files)
    label_of: dict[str, str] = {}
    for labels in files:
        for item_id, label in labels.items():
            label_of.setdefault(item_id, label)
    pairs = [
        (files[i][item_id], files[j][item_id])
        for i in range(len(files))
        for j in range(i + 1, len(files))
        for item_id in files[i].keys() & files[j].keys()
    ]
    labelled = [{**item, "label": label_of[item["id"]]} for item in key if item["id"] in label_of]
    _write_jsonl(folder / "labelled.jsonl", labelled)
    groups: dict[tuple, list[str]] = defaultdict(list)
    for item in labelled:
        groups[tuple(str(item.get(field, "")) for field in by)].append(item["label"])
        groups[("all",) * len(by)].append(item["label"])
    table = []
    for group, labels in sorted(groups.items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        good = labels.count("GOOD")
        low, high = wilson_interval(good, len(labels))
        table.append(
            {
                **dict(zip(by, group)),
                "n": len(labels),
                "good": good,
                "good_share": good / len(labels),
                "good_low": low,
                "good_high": high,
                **{label.lower(): labels.count(label) for label in LABELS},
            }
        )
    summary = {
        "items": len(key),
        "labelled_items": len(labelled),
        "distinct_triples": len({item["id"] for item in key}),
        "double_labelled": len(pairs),
        "agreement": sum(a == b for a, b in pairs) / len(pairs) if pairs else None,
        "kappa": cohen_kappa([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None,
        "label_files": [str(path) for path in label_files],
        "by": by,
        "table": table,
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def run_export(config: ReadingExportConfig) -> int:
    items = _read_jsonl(Path(config.items).expanduser())
    paths = export_blind(items, Path(config.out).expanduser(), parts=config.parts, seed=config.seed)
    print(
        f"wrote {len(paths)} blind file(s) for readers ({', '.join(str(p) for p in paths)}); keep key.jsonl from them"
    )
    return 0


def run_merge(config: ReadingMergeConfig) -> int:
    summary = merge_labels(
        Path(config.folder).expanduser(), [Path(p).expanduser() for p in config.labels], config.by
    )
    if summary["kappa"] is not None:
        print(
            f"{summary['double_labelled']} double-labelled: agreement {summary['agreement']:.0%}, "
            f"Cohen's kappa {summary['kappa']:.2f}"
        )
    for row in summary["table"]:
        name = " ".join(str(row[field]) for field in config.by)
        print(
            f"{name:40s} GOOD {row['good']:4d}/{row['n']:<4d} {row['good_share']:6.1%} "
            f"[{row['good_low']:.0%}, {row['good_high']:.0%}]"
        )
    return 0
