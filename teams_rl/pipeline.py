"""``teams-rl pipeline``: seeds to fine-tuned model in one run directory.

Stages, each skipped when its output is already complete (so running the same command again after
an interruption picks up where it stopped; training resumes from its last checkpoint and generation
from its journal):

1. ``train``: the instructor policy (``DIR/train``);
2. ``generate``: the dataset (``DIR/data``);
3. ``sft``: the dataset split by seed into ``sft_train.jsonl`` and ``sft_heldout.jsonl``, then one
   supervised fine-tuning step on the training split (``DIR/model``);
4. ``evaluate``: diversity of the seeds vs the dataset, the membership-inference attack (the
   training split are members, the held-out split non-members), lm-evaluation-harness on the
   fine-tuned (and the base) model (``DIR/eval``);

then ``DIR/report.md`` with the numbers and plots of every stage.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agents.journal import read_jsonl
from teams_env.configuration import build, load_yaml
from teams_rl.pipeline_config import PRESETS_DIR, SHARED_KEYS, STAGES, PipelineConfig

DONE_DIR = ".stages"
EVALUATE_DEFAULTS = {
    "holdout": 0.25,
    "tasks": ["teams_rl_general_knowledge"],
    "shots": [],
    "limit": 0,
    "compare_base": True,
}


def preset_values(name: str) -> dict[str, Any]:
    """A shipped preset by name, or a YAML file."""
    shipped = PRESETS_DIR / f"{name}.yml"
    path = shipped if shipped.is_file() else Path(name).expanduser()
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yml")))
        raise FileNotFoundError(f"preset '{name}' is neither a shipped preset ({names}) nor a YAML file")
    values = load_yaml(path)
    known = {f.name for f in dataclasses.fields(PipelineConfig)} - {"preset"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown key '{unknown[0]}' (known keys: {', '.join(sorted(known))})")
    return values


def resolved(config: PipelineConfig) -> PipelineConfig:
    """The preset's values under the config's: strings left empty and stage keys not given come
    from the preset."""
    base = preset_values(config.preset)
    merged: dict[str, Any] = {}
    for item in dataclasses.fields(PipelineConfig):
        mine = getattr(config, item.name)
        if item.name in STAGES:
            merged[item.name] = {**base.get(item.name, {}), **mine}
        elif mine in ("", None) and item.name in base:
            merged[item.name] = base[item.name]
        else:
            merged[item.name] = mine
    merged["out"] = merged["out"] or f"pipelines/{Path(config.preset).stem}"
    return build(PipelineConfig, merged, f"preset '{config.preset}'")


def _stage_options(config: PipelineConfig, stage: str, fields: set[str]) -> dict[str, Any]:
    """The shared options this stage takes, under its own mapping."""
    shared = {key: getattr(config, key) for key in SHARED_KEYS if key in fields and getattr(config, key)}
    if "seed" in fields:
        shared["seed"] = config.seed
    return {**shared, **getattr(config, stage)}


class Pipeline:
    def __init__(self, config: PipelineConfig) -> None:
        self.config = resolved(config)
        self.out = Path(self.config.out).expanduser()
        self.out.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, dict[str, Any]] = {}

    # -- bookkeeping ---------------------------------------------------------------------
    def _marker(self, stage: str) -> Path:
        return self.out / DONE_DIR / f"{stage}.json"

    def _stage(self, stage: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        marker = self._marker(stage)
        if stage not in self.config.stages:
            return json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else {}
        if marker.is_file() and not self.config.force:
            print(f"pipeline: {stage} is complete in {self.out}; skipped", flush=True)
            summary = json.loads(marker.read_text(encoding="utf-8"))
            self.timings[stage] = {"seconds": summary.get("seconds", 0.0), "skipped": True}
            return summary
        print(f"pipeline: {stage} ...", flush=True)
        start = time.perf_counter()
        summary = {**work(), "seconds": time.perf_counter() - start}
        marker.parent.mkdir(exist_ok=True)
        marker.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        self.timings[stage] = {"seconds": summary["seconds"], "skipped": False}
        return summary

    def _stage_config(self, cls: type, stage: str, **fixed: Any) -> Any:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {**_stage_options(self.config, stage, fields), **fixed}
        return build(cls, values, f"pipeline stage '{stage}'")

    # -- stages --------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        from agents.config import TrainConfig
        from agents.run_dir import RunDir
        from agents.train import train

        run = RunDir(self.out / "train")
        if run.is_run() and run.latest_checkpoint() is None and not run.final_model.is_file():
            shutil.rmtree(run.path)  # stopped before its first checkpoint: nothing to resume
        run_dir = run.path
        resume = str(run_dir) if run.is_run() else ""
        config = self._stage_config(
            TrainConfig, "train", runs_dir=str(self.out), run_name="train", resume=resume, progress_bar=False
        )
        train(config)
        returns = [row["return"] for row in read_jsonl(run_dir / "episodes.jsonl")]
        quarter = max(1, len(returns) // 4)
        return {
            "run_dir": str(run_dir),
            "queries": json.loads((run_dir / "queries.json").read_text()),
            "episodes": len(returns),
            "first_quarter_return": sum(returns[:quarter]) / quarter if returns else None,
            "last_quarter_return": sum(returns[-quarter:]) / quarter if returns else None,
        }

    def generate(self) -> dict[str, Any]:
        from agents.config import GenerateConfig
        from agents.generate import generate

        trained = self.out / "train"
        policy = self.config.generate.get("policy") or (str(trained) if trained.is_dir() else "uniform")
        config = self._stage_config(GenerateConfig, "generate", out=str(self.out / "data"), policy=policy)
        data = generate(config)
        return {"data": str(data), "stats": json.loads((data / "stats.json").read_text(encoding="utf-8"))}

    def sft(self) -> dict[str, Any]:
        from finetune.config import SFTConfig
        from finetune.sft import run as run_sft

        data = self.out / "data"
        train_rows, held_out = _split(data / "dataset.jsonl", float(self._evaluate_options()["holdout"]))
        _write_jsonl(data / "sft_train.jsonl", train_rows)
        _write_jsonl(data / "sft_heldout.jsonl", held_out)
        config = self._stage_config(
            SFTConfig, "sft", data=str(data / "sft_train.jsonl"), out=str(self.out / "model")
        )
        run_sft(config)
        log = json.loads((self.out / "model" / "training_log.json").read_text(encoding="utf-8"))
        return {
            "model": str(self.out / "model"),
            "base": config.base,
            "summary": log["summary"],
            "sft_train": len(train_rows),
            "sft_heldout": len(held_out),
        }

    def evaluate(self) -> dict[str, Any]:
        from finetune.config import EvalConfig, PrivacyConfig
        from finetune.lm_eval_runner import evaluate as lm_evaluate
        from finetune.privacy import run as run_privacy
        from finetune.records import read_instructions
        from teams_env.encoder import shared_encoder
        from teams_env.metrics import diversity_summary

        options = self._evaluate_options()
        data, model, out = self.out / "data", self.out / "model", self.out / "eval"
        out.mkdir(exist_ok=True)
        rows = read_jsonl(data / "dataset.jsonl")
        seeds = list(dict.fromkeys(row["seed_instruction"] for row in rows))  # those the data grew from
        encoder = shared_encoder(self.config.encoder or "default")
        diversity = {
            "seeds": diversity_summary(seeds, encoder.encode),
            "dataset": diversity_summary(read_instructions(data / "dataset.jsonl"), encoder.encode),
        }
        run_privacy(
            PrivacyConfig(
                model=str(model),
                members=str(data / "sft_train.jsonl"),
                non_members=str(data / "sft_heldout.jsonl"),
                out=str(out / "privacy"),
                seed=self.config.seed,
            )
        )
        models = {"fine-tuned": str(model)}
        if options["compare_base"]:
            models["base"] = str(self.config.sft.get("base", "embedded"))
        lm_eval = {}
        for name, path in models.items():
            config = EvalConfig(
                model=path,
                tasks=list(options["tasks"]),
                shots=list(options["shots"]),
                limit=int(options["limit"]),
                seed=self.config.seed,
                out=str(out / f"lm_eval_{name}"),
            )
            lm_eval[name] = lm_evaluate(config)["results"]
        privacy = json.loads((out / "privacy" / "privacy.json").read_text(encoding="utf-8"))
        privacy.pop("losses", None)
        result = {"diversity": diversity, "privacy": privacy, "lm_eval": lm_eval, "encoder": encoder.name}
        (out / "evaluation.json").write_text(
            json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8"
        )
        return result

    def _evaluate_options(self) -> dict[str, Any]:
        unknown = sorted(set(self.config.evaluate) - set(EVALUATE_DEFAULTS))
        if unknown:
            raise ValueError(
                f"evaluate: unknown key '{unknown[0]}' (known keys: {', '.join(EVALUATE_DEFAULTS)})"
            )
        options = {**EVALUATE_DEFAULTS, **self.config.evaluate}
        if not 0.0 < float(options["holdout"]) < 1.0:
            raise ValueError(f"evaluate: holdout must be between 0 and 1, got {options['holdout']}")
        return options

    # -- the run -------------------------------------------------------------------------
    def run(self) -> Path:
        from teams_rl.report import write_report

        self._evaluate_options()  # a bad key fails before hours of work
        start = time.perf_counter()
        results = {
            "train": self._stage("train", self.train),
            "generate": self._stage("generate", self.generate),
            "sft": self._stage("sft", self.sft),
            "evaluate": self._stage("evaluate", self.evaluate),
        }
        path = write_report(self.out, self.config, results, self.timings, time.perf_counter() - start)
        print(f"pipeline: report written to {path}")
        return path


def _split(dataset: Path, holdout: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A split by seed (every item of a seed on the same side, so held-out items are new to the
    model), decided by a hash of the seed id: the same on every run and every machine."""
    rows = read_jsonl(dataset)
    if len(rows) < 4:
        raise ValueError(
            f"{dataset}: {len(rows)} items kept; the pipeline needs at least 4 to fine-tune and attack"
        )
    held = [r for r in rows if zlib.crc32(r["seed_id"].encode("utf-8")) % 1000 < holdout * 1000]
    kept = [r for r in rows if r not in held]
    if not held or not kept:  # tiny sets: fall back to alternating seeds
        seeds = sorted({r["seed_id"] for r in rows})
        held_seeds = set(seeds[1::2])
        held = [r for r in rows if r["seed_id"] in held_seeds]
        kept = [r for r in rows if r["seed_id"] not in held_seeds]
    if not held:
        raise ValueError(
            f"{dataset}: every kept item comes from one seed; the split needs at least two seeds"
        )
    return kept, held


def _write_jsonl(path: Path, rows: list[Mapping[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def run(config: PipelineConfig) -> int:
    Pipeline(config).run()
    return 0
