"""``teams-rl``: a thin dispatcher. Each command's configuration is a dataclass (flags and YAML
``--config`` come from it); its stage module is imported only when the command runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from teams_env.options import ConfigError
from teams_rl.flags import add_arguments, resolve


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    config: str
    """``module:Class`` of the configuration dataclass (a light module: no heavy imports)."""
    run: str
    """``module:function`` called with the configuration; returns an exit code or None."""
    positional: str | None = None
    """A field filled from positional arguments: a list field from several (the files of
    ``diversity``), any other from one (the pack of ``audit``)."""
    on_interrupt: str = "interrupted"
    """What Ctrl-C leaves behind and how to go on."""


QUIET_LIBRARIES = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}
"""Environment variables that hush libraries' progress bars, read when those libraries load."""

QUIET_LOGGERS = (
    "lm_eval",
    "transformers",
    "datasets",
    "kernels",
    "accelerate",
    "peft",
    "trl",
    "sentence_transformers",
    "huggingface_hub",
)
"""Libraries whose log warnings (notices about arguments, weights, defaults) are hidden unless --verbose."""

OUR_PACKAGES = ("teams_env", "agents", "finetune", "teams_rl", "benchmarks")
RESUMES = "interrupted; run the same command again to resume where it stopped"
CACHED = "interrupted; LLM answers are cached, so running it again repeats no query already answered"


COMMANDS: tuple[Command, ...] = (
    Command(
        "doctor",
        "Check this machine: CPU and llama.cpp build, torch, cache, embedded models, one real request per role.",
        "teams_rl.doctor:DoctorConfig",
        "teams_rl.doctor:run",
    ),
    Command(
        "rollout",
        "Run a few episodes of the environment and print each rewrite and verdict.",
        "teams_rl.rollout:RolloutConfig",
        "teams_rl.rollout:run",
    ),
    Command(
        "reviewer-bench",
        "Measure a reviewer on labelled pairs: per-category accuracy, ROC AUC, validity, cost.",
        "teams_rl.reviewer_commands:ReviewerBenchConfig",
        "teams_rl.reviewer_commands:run_bench",
        on_interrupt=CACHED,
    ),
    Command(
        "train-reviewer",
        "Fit a review head (P(Not Equal), P(valid)) on a reviewer model's hidden states of labelled pairs.",
        "teams_rl.reviewer_commands:TrainReviewerConfig",
        "teams_rl.reviewer_commands:run_train",
        on_interrupt=CACHED,
    ),
    Command(
        "reading-export",
        "Blind files of (instruction, action, rewrite) triples for readers, with the key kept apart.",
        "teams_rl.reading:ReadingExportConfig",
        "teams_rl.reading:run_export",
        positional="items",
    ),
    Command(
        "reading-merge",
        "Merge readers' labels back: GOOD shares with intervals, agreement and Cohen's kappa.",
        "teams_rl.reading:ReadingMergeConfig",
        "teams_rl.reading:run_merge",
        positional="folder",
    ),
    Command(
        "train",
        "Train the instructor policy with sb3-contrib TRPO (default) or another SB3 algorithm.",
        "teams_rl.agents.commands:TrainConfig",
        "teams_rl.agents.training.train:run",
        on_interrupt="interrupted; the checkpoint is saved: continue with teams-rl train --resume RUN_DIR",
    ),
    Command(
        "evaluate-policy",
        "Roll a trained policy, a baseline or a custom agent over held-out seeds and report its rewards.",
        "teams_rl.agents.commands:EvaluatePolicyConfig",
        "teams_rl.agents.evaluation:run",
        on_interrupt=CACHED,
    ),
    Command(
        "generate",
        "Generate an instruction dataset: a policy drives the expert over seeds; eliminate, dedup, answer.",
        "teams_rl.agents.commands:GenerateConfig",
        "teams_rl.agents.generation.generate:run",
        on_interrupt=RESUMES,
    ),
    Command(
        "bench",
        "Benchmark RL algorithms and baselines on instruction diversity (mean and 95% CI over seeds).",
        "teams_rl.agents.commands:BenchConfig",
        "teams_rl.agents.benchmark.live:run",
        on_interrupt=CACHED,
    ),
    Command(
        "record",
        "Record every action sequence from each seed to a depth into a transition pack (for the replay env).",
        "teams_rl.record:RecordConfig",
        "teams_rl.record:run",
        on_interrupt=RESUMES,
    ),
    Command(
        "audit",
        "What a reward pays for in a transition pack: reward rates, rewarded samples, junk counts, ceilings.",
        "teams_rl.audit:AuditConfig",
        "teams_rl.audit:run",
        positional="pack",
    ),
    Command(
        "pipeline",
        "Train, generate, fine-tune and evaluate in one run directory (--preset quick runs on this CPU).",
        "teams_rl.pipeline_config:PipelineConfig",
        "teams_rl.pipeline:run",
        on_interrupt=RESUMES,
    ),
    Command(
        "sft",
        "Fine-tune a model on a generated dataset with TRL (full, LoRA or QLoRA).",
        "teams_rl.finetune.commands:SFTConfig",
        "teams_rl.finetune.sft:run",
    ),
    Command(
        "train-expert",
        "Train the specialist expert (a LoRA adapter for llama.cpp) on demonstrations of the six rewrites.",
        "teams_rl.finetune.commands:ExpertTrainConfig",
        "teams_rl.finetune.expert_training:run",
        on_interrupt="interrupted; checkpoints are saved: the same command resumes from the last one",
    ),
    Command(
        "eval",
        "Benchmark a model with lm-evaluation-harness (ARC 25-shot, HellaSwag 10-shot by default).",
        "teams_rl.finetune.commands:EvalConfig",
        "teams_rl.finetune.lm_eval_runner:run",
    ),
    Command(
        "privacy",
        "Membership-inference attack on a fine-tuned model: per-example loss, ROC curve, AUC.",
        "teams_rl.finetune.commands:PrivacyConfig",
        "teams_rl.finetune.privacy:run",
    ),
    Command(
        "diversity",
        "Diversity metrics of instruction files, side by side (Vendi, distinct-n, cosine distances).",
        "teams_rl.finetune.commands:DiversityConfig",
        "teams_rl.finetune.diversity:run",
        positional="files",
    ),
)


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _positional_nargs(config: type, name: str) -> str:
    """Several values for a list option (the files of ``diversity``), else at most one (a pack)."""
    return "*" if typing.get_origin(typing.get_type_hints(config)[name]) in (list, tuple) else "?"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="teams-rl",
        description="TeaMs-RL: train an instructor policy, generate a diverse instruction dataset, fine-tune and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"teams-rl {_load('teams_rl:__version__')}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        # argparse %-formats help strings (not descriptions): "95% CI" must reach it as "95%% CI".
        sub = commands.add_parser(
            command.name, help=command.help.replace("%", "%%"), description=command.help
        )
        sub.add_argument(
            "--config", metavar="FILE", help="YAML file of options; flags given here override it"
        )
        sub.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
        if command.positional:
            sub.add_argument(
                command.positional,
                nargs=_positional_nargs(_load(command.config), command.positional),
                default=argparse.SUPPRESS,
                metavar=command.positional.upper().rstrip("S"),
            )
        add_arguments(sub, _load(command.config))
        sub.set_defaults(_command=command)
    return parser


def configure_output(verbose: bool) -> None:
    """Our progress and summaries, not the libraries' notices: our packages log at INFO, libraries
    only errors, and Python warnings (only libraries raise them here) are hidden; ``verbose`` shows
    everything at DEBUG."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    for package in OUR_PACKAGES:
        logging.getLogger(package).setLevel(logging.DEBUG if verbose else logging.INFO)
    # sentence-transformers imports peft, which imports bitsandbytes, which warns on every CPU run
    # about optional 4-bit kernels that nothing here uses.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    if verbose:
        return
    # Libraries' own progress bars and notices (transformers loading weights, datasets mapping,
    # lm-eval explaining its arguments) drown our progress lines.
    for variable, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(variable, value)
    for library in QUIET_LOGGERS:
        logging.getLogger(library).setLevel(logging.ERROR)
    # Deprecation and usage warnings of torch, transformers, trl, peft or bitsandbytes: our code
    # logs rather than warns, so every Python warning here is a library's notice.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Command = args._command
    configure_output(args.verbose)
    try:
        config = resolve(_load(command.config), args, args.config)
        result = _load(command.run)(config)
    except KeyboardInterrupt:
        print(f"teams-rl {command.name}: {command.on_interrupt}", file=sys.stderr)
        return 130
    except (ConfigError, ValueError, OSError, RuntimeError) as error:
        # Expected failures (bad input, a missing model, an unreachable server, a full disk) are one
        # line; whatever was finished is on disk, and the same command resumes.
        if args.verbose:
            raise
        print(f"teams-rl {command.name}: error: {error}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
