"""``teams-rl pipeline``: seeds to fine-tuned model in one run directory.

Stages, each skipped when its output is already complete (so running the same command again after
an interruption picks up where it stopped; training resumes from its last checkpoint and generation
from its journal):

1. ``train``: the instructor policy (``DIR/train``), on the live env or, with the train option
   ``pack``, on a recorded pack's replay env (then evaluated on the pack's held-out seeds:
   ``DIR/train/pack_eval.json``);
2. ``generate``: the dataset (``DIR/data``);
3. ``sft``: the dataset split by seed into ``sft_train.jsonl`` and ``sft_heldout.jsonl``, then one
   supervised fine-tuning step on the training split (``DIR/model``);
4. ``evaluate``: diversity of the seeds vs the dataset, the membership-inference attack (the
   training split are members, the held-out split non-members), lm-evaluation-harness on the
   fine-tuned (and the base) model (``DIR/eval``);

then ``DIR/report.md`` with the numbers and plots of every stage.

Each stage's marker (``DIR/.stages/STAGE.json``) holds a fingerprint of the stage's full resolved
config. A stage whose options changed since it completed runs again from scratch, and so do the
stages after it (the line printed says which option changed); ``--force`` does the same for the
stages it names. A stage that runs invalidates the markers of the stages after it, so no later run
reuses outputs made from the old ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from teams_env.env_config import ENV_DEFAULTS
from teams_env.options import build, check_keys, dump, load_preset
from teams_rl.agents.journal import read_jsonl
from teams_rl.pipeline_config import PRESETS_DIR, SHARED_KEYS, STAGES, PipelineConfig

DONE_DIR = ".stages"
STAGE_OUTPUTS = {
    "train": ("train",),
    "generate": ("data",),
    "sft": ("model", "data/sft_train.jsonl", "data/sft_heldout.jsonl"),
    "evaluate": ("eval",),
}
"""What each stage writes under the run directory: removed before the stage runs again from scratch."""
EVALUATE_DEFAULTS = {
    "holdout": 0.25,
    "tasks": ["teams_rl_general_knowledge"],
    "shots": [],
    "limit": 0,
    "compare_base": True,
}


def preset_values(name: str) -> dict[str, Any]:
    """A shipped preset by name, or a YAML file."""
    known = {f.name for f in dataclasses.fields(PipelineConfig)} - {"preset"}
    return load_preset(name, PRESETS_DIR, lambda values, where: check_keys(values, known, where))


def resolved(config: PipelineConfig) -> PipelineConfig:
    """The preset's values under the config's: options not set (None) and stage keys not given come
    from the preset."""
    base = preset_values(config.preset)
    merged: dict[str, Any] = {}
    for item in dataclasses.fields(PipelineConfig):
        mine = getattr(config, item.name)
        if item.name in STAGES:
            merged[item.name] = {**base.get(item.name, {}), **mine}
        elif mine is None and item.name in base:
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


def _fingerprint(options: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


def _changes(before: Mapping[str, Any], now: Mapping[str, Any], shown: int = 3) -> str:
    """``key: old -> new`` for the options that differ (the first ``shown`` of them)."""
    keys = sorted(key for key in set(before) | set(now) if before.get(key) != now.get(key))
    listed = [f"{key}: {before.get(key)!r} -> {now.get(key)!r}" for key in keys[:shown]]
    return ", ".join(listed) + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def _without(options: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in options.items() if key not in names}


def _pack_hash(spec: str) -> str:
    """The content hash a pack's manifest records for its nodes."""
    from teams_env.replay.pack import pack_directory, read_manifest

    return str(read_manifest(pack_directory(spec)).get("content_sha256", ""))


class Pipeline:
    def __init__(self, config: PipelineConfig) -> None:
        self.config = resolved(config)
        self.out = Path(self.config.out).expanduser()
        self.out.mkdir(parents=True, exist_ok=True)
        self.timings: dict[str, dict[str, Any]] = {}
        self._invalidated_now: set[str] = set()

    # -- bookkeeping ---------------------------------------------------------------------
    def _marker(self, stage: str) -> Path:
        return self.out / DONE_DIR / f"{stage}.json"

    def _started(self, stage: str) -> Path:
        """Written when a stage starts, removed when it completes: the fingerprint it started with,
        or which earlier stage ran again since."""
        return self.out / DONE_DIR / f"{stage}.started.json"

    def _rerun_reason(self, stage: str, options: Mapping[str, Any], fingerprint: str) -> str | None:
        """Why the stage's earlier outputs cannot be reused; None when they can (the stage is
        complete, or was interrupted with the same options and resumes)."""
        found = [path for path in (self._marker(stage), self._started(stage)) if path.is_file()]
        if not found:
            return None
        if self.config.force:
            return "--force"
        earlier = json.loads(found[0].read_text(encoding="utf-8"))
        if earlier.get("invalidated_by"):
            return f"{earlier['invalidated_by']} ran again since {stage} last ran"
        if "fingerprint" not in earlier:
            return "its marker predates config fingerprints"
        if earlier["fingerprint"] != fingerprint:
            return f"options changed ({_changes(earlier.get('options', {}), options)})"
        return None

    def _clear_outputs(self, stage: str) -> None:
        for name in STAGE_OUTPUTS[stage]:
            path = self.out / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def _invalidate_after(self, stage: str) -> list[str]:
        """Mark every later stage that has outputs to run again from scratch; returns them."""
        invalidated = []
        for later in STAGES[STAGES.index(stage) + 1 :]:
            marker, started = self._marker(later), self._started(later)
            if (
                marker.is_file()
                or started.is_file()
                or any((self.out / name).exists() for name in STAGE_OUTPUTS[later])
            ):
                started.write_text(json.dumps({"invalidated_by": stage}) + "\n", encoding="utf-8")
                marker.unlink(missing_ok=True)
                invalidated.append(later)
                self._invalidated_now.add(later)
        return invalidated

    def _stage(self, stage: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        marker = self._marker(stage)
        if stage not in self.config.stages:
            return json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else {}
        options = json.loads(json.dumps(self._resolved_options(stage), sort_keys=True, default=str))
        fingerprint = _fingerprint(options)
        reason = self._rerun_reason(stage, options, fingerprint)
        if marker.is_file() and reason is None:
            print(f"pipeline: {stage} is complete in {self.out} with the same options; skipped", flush=True)
            summary = json.loads(marker.read_text(encoding="utf-8"))
            self.timings[stage] = {"seconds": summary.get("seconds", 0.0), "skipped": True}
            return summary
        marker.parent.mkdir(exist_ok=True)
        said = stage in self._invalidated_now  # the stage that invalidated this one said so
        invalidated = self._invalidate_after(stage)
        if reason is not None:
            self._clear_outputs(stage)
            if not said:
                after = f" and {', '.join(invalidated)}" if invalidated else ""
                print(f"pipeline: {stage}: {reason}; running {stage}{after} again from scratch", flush=True)
        marker.unlink(missing_ok=True)
        self._started(stage).write_text(json.dumps({"fingerprint": fingerprint}) + "\n", encoding="utf-8")
        print(f"pipeline: {stage} ...", flush=True)
        start = time.perf_counter()
        summary = {**work(), "seconds": time.perf_counter() - start}
        record = {**summary, "fingerprint": fingerprint, "options": options}
        marker.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        self._started(stage).unlink(missing_ok=True)
        self.timings[stage] = {"seconds": summary["seconds"], "skipped": False, "reason": reason}
        return summary

    def _resolved_options(self, stage: str) -> dict[str, Any]:
        """Everything that decides the stage's outputs: its full config, defaults included, less the
        places inside the run directory (so a moved run directory is still complete)."""
        if stage == "train":
            options = _without(
                dump(self._train_config(resume="")), "out", "runs_dir", "run_name", "resume", "progress_bar"
            )
            if not options.get("pack"):
                return _without(options, "pack")  # as before packs: earlier live runs stay complete
            # What the policy learns from is the pack's content, wherever it lies.
            return {**options, "pack_content_sha256": _pack_hash(str(options["pack"]))}
        if stage == "generate":
            options = _without(dump(self._generate_config()), "out")
            if options["policy"] == str(self.out / "train"):
                options["policy"] = "the train stage's policy"
            return options
        if stage == "sft":
            return {
                **_without(dump(self._sft_config()), "data", "out"),
                "holdout": float(self._evaluate_options()["holdout"]),
            }
        return {
            **self._evaluate_options(),
            "encoder": self.config.encoder or ENV_DEFAULTS.encoder,
            "seed": self.config.seed,
            "base": str(self.config.sft.get("base", "embedded")),
        }

    def _stage_config(self, cls: type, stage: str, **fixed: Any) -> Any:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {**_stage_options(self.config, stage, fields), **fixed}
        return build(cls, values, f"pipeline stage '{stage}'")

    def _train_config(self, resume: str) -> Any:
        from teams_rl.agents.commands import TrainConfig

        return self._stage_config(
            TrainConfig, "train", out=str(self.out), run_name="train", resume=resume, progress_bar=False
        )

    def _generate_config(self) -> Any:
        from teams_rl.agents.commands import GenerateConfig

        trained = self.out / "train"
        policy = self.config.generate.get("policy") or (str(trained) if trained.is_dir() else "uniform")
        return self._stage_config(GenerateConfig, "generate", out=str(self.out / "data"), policy=policy)

    def _sft_config(self) -> Any:
        from teams_rl.finetune.commands import SFTConfig

        data = self.out / "data"
        return self._stage_config(
            SFTConfig, "sft", data=str(data / "sft_train.jsonl"), out=str(self.out / "model")
        )

    # -- stages --------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        from teams_rl.agents.training.run_dir import RunDir
        from teams_rl.agents.training.train import train

        run = RunDir(self.out / "train")
        if run.is_run() and run.latest_checkpoint() is None and not run.final_model.is_file():
            shutil.rmtree(run.path)  # stopped before its first checkpoint: nothing to resume
        run_dir = run.path
        train(self._train_config(resume=str(run_dir) if run.is_run() else ""))
        episodes = read_jsonl(run_dir / "episodes.jsonl")
        returns = [row["return"] for row in episodes]
        quarter = max(1, len(returns) // 4)
        summary = {
            "run_dir": str(run_dir),
            "queries": json.loads((run_dir / "queries.json").read_text()),
            "episodes": len(returns),
            "episode_length": episodes[-1]["length"] if episodes else None,
            "first_quarter_return": sum(returns[:quarter]) / quarter if returns else None,
            "last_quarter_return": sum(returns[-quarter:]) / quarter if returns else None,
        }
        pack_eval = run_dir / "pack_eval.json"
        if pack_eval.is_file():  # trained on a pack: its evaluation, less the per-seed episodes
            evaluation = json.loads(pack_eval.read_text(encoding="utf-8"))
            evaluation["splits"] = {
                split: None if result is None else _without(result, "episodes")
                for split, result in evaluation["splits"].items()
            }
            summary["pack_eval"] = evaluation
        return summary

    def generate(self) -> dict[str, Any]:
        from teams_rl.agents.generation.generate import generate

        data = generate(self._generate_config())
        return {"data": str(data), "stats": json.loads((data / "stats.json").read_text(encoding="utf-8"))}

    def sft(self) -> dict[str, Any]:
        from teams_rl.finetune.sft import run as run_sft

        data = self.out / "data"
        train_rows, held_out = _split(data / "dataset.jsonl", float(self._evaluate_options()["holdout"]))
        _write_jsonl(data / "sft_train.jsonl", train_rows)
        _write_jsonl(data / "sft_heldout.jsonl", held_out)
        config = self._sft_config()
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
        from teams_env.encoder import shared_encoder
        from teams_env.metrics import compared_diversity
        from teams_rl.finetune.commands import EvalConfig, PrivacyConfig
        from teams_rl.finetune.lm_eval_runner import evaluate as lm_evaluate
        from teams_rl.finetune.privacy import run as run_privacy
        from teams_rl.finetune.records import read_instructions

        options = self._evaluate_options()
        data, model, out = self.out / "data", self.out / "model", self.out / "eval"
        out.mkdir(exist_ok=True)
        rows = read_jsonl(data / "dataset.jsonl")
        seeds = list(dict.fromkeys(row["seed_instruction"] for row in rows))  # those the data grew from
        encoder = shared_encoder(self.config.encoder or ENV_DEFAULTS.encoder)
        sets = {"seeds": seeds, "dataset": read_instructions(data / "dataset.jsonl")}
        # Vendi grows with set size: both sets also on random subsets of the smaller one's size.
        diversity = compared_diversity(sets, encoder.encode, seed=self.config.seed)
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
        from teams_rl.pipeline_report import write_report

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
