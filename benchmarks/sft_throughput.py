"""SFT training throughput on this CPU: our defaults vs TRL's defaults, side by side in one run.

Every arm fine-tunes the embedded SmolLM2-135M with TRL's SFTTrainer on the same conversations, with
the same batch size, maximum length and number of steps; they differ only where ``teams-rl sft``
departs from TRL's ``SFTConfig`` defaults. TRL turns on bf16 mixed precision and gradient
checkpointing; ours leaves checkpointing off and picks bf16 only where the CPU computes it natively
(else fp32). Throughput counts the non-padding tokens of the steps after the first (the first pays
one-time set-up).

Two CPU cases are measured, each arm in its own process:

- this CPU as it is (it has native bf16: AVX512-BF16);
- a CPU without native bf16, simulated by capping oneDNN (torch's CPU kernels) at AVX2 with
  ``ONEDNN_MAX_CPU_ISA=AVX2``; ``--precision auto`` picks fp32 on such a CPU, so our arm runs fp32.

    python -m benchmarks.sft_throughput [--steps 3] [--batch-size 4] [--max-length 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from benchmarks.common import markdown_table, write_result
from teams_env.seeds import load_seeds
from teams_rl.finetune.commands import SFTConfig
from teams_rl.finetune.device import cpu_has_native_bf16, resolve_precision
from teams_rl.finetune.models import resolve_model
from teams_rl.finetune.presets import apply_preset
from teams_rl.finetune.records import Conversation
from teams_rl.finetune.sft import build_trainer, training_arguments

ANSWER = (
    "Here is a careful answer. First, restate the goal in plain words and list what is known. "
    "Second, work through the steps one at a time, checking each against the constraints. "
    "Third, give the result with a short example, and end with one sentence of advice."
)
EMULATED_BF16_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2"}


@dataclass(frozen=True)
class Arm:
    cpu: str
    name: str
    precision: str
    """Our arms' ``--precision``; the emulated CPU's probe still reports native bf16, so its arm
    is given fp32, what ``auto`` picks on a CPU without it."""
    checkpointing: bool
    env: dict[str, str]


ARMS = (
    Arm("native bf16 (this CPU)", "teams-rl defaults", "auto", False, {}),
    Arm("native bf16 (this CPU)", "fp32, no checkpointing", "fp32", False, {}),
    Arm("native bf16 (this CPU)", "TRL defaults", "bf16", True, {}),
    Arm("no native bf16 (oneDNN capped at AVX2)", "teams-rl defaults", "fp32", False, EMULATED_BF16_ENV),
    Arm("no native bf16 (oneDNN capped at AVX2)", "TRL defaults", "bf16", True, EMULATED_BF16_ENV),
)


class StepTimer(TrainerCallback):
    """Wall-clock seconds of every optimizer step."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
        self.start = time.perf_counter()

    def on_step_end(self, *args: Any, **kwargs: Any) -> None:
        self.seconds.append(time.perf_counter() - self.start)


def conversations(rows: int) -> list[Conversation]:
    """Chats built from the bundled seed instructions, with an answer of realistic length."""
    seeds = list(load_seeds("bundled"))
    return [
        [{"role": "user", "content": seeds[i % len(seeds)].text}, {"role": "assistant", "content": ANSWER}]
        for i in range(rows)
    ]


def sft_config(steps: int, batch_size: int, max_length: int, arm: Arm) -> SFTConfig:
    return apply_preset(
        SFTConfig(
            data="(bundled seeds)",
            max_steps=steps,
            batch_size=batch_size,
            max_length=max_length,
            gradient_checkpointing=arm.checkpointing,
        )
    )


def arm_arguments(arm: Arm, out: Path, steps: int, batch_size: int, max_length: int) -> dict[str, Any]:
    """``trl.SFTConfig`` arguments: ours from ``teams_rl.finetune.sft.training_arguments``; TRL's defaults
    with only the shared settings fixed (``use_cpu``: without it TRL's bf16 refuses to run on a CPU)."""
    if arm.name == "TRL defaults":
        return {
            "output_dir": str(out),
            "use_cpu": True,
            "max_steps": steps,
            "per_device_train_batch_size": batch_size,
            "max_length": max_length,
            "logging_steps": 1,
            "save_strategy": "no",
            "report_to": "none",
        }
    precision = resolve_precision(arm.precision, "cpu")
    return training_arguments(sft_config(steps, batch_size, max_length, arm), precision, "cpu", out)


def measure_arm(arm: Arm, steps: int, batch_size: int, max_length: int, rows: int) -> dict[str, Any]:
    """Train one arm in this process; seconds and tokens of every step."""
    config = sft_config(steps, batch_size, max_length, arm)
    with tempfile.TemporaryDirectory() as scratch:
        arguments = arm_arguments(arm, Path(scratch), steps, batch_size, max_length)
        trainer = build_trainer(config, conversations(rows), resolve_model("embedded"), "fp32", arguments)
        timer = StepTimer()
        trainer.add_callback(timer)
        trainer.train()
    tokens = [entry["num_tokens"] for entry in trainer.state.log_history if "num_tokens" in entry]
    per_step = [b - a for a, b in itertools.pairwise([0, *tokens])]  # logged counts are cumulative
    return {
        "bf16": trainer.args.bf16,
        "gradient_checkpointing": trainer.args.gradient_checkpointing,
        "step_seconds": timer.seconds,
        "step_tokens": per_step,
        "seconds_per_step": sum(timer.seconds[1:]) / len(timer.seconds[1:]),
        "tokens_per_second": sum(per_step[1:]) / sum(timer.seconds[1:]),
    }


def run_arm_in_child(index: int, args: argparse.Namespace) -> dict[str, Any]:
    """One arm in a fresh process (its own environment variables, nothing warm from other arms)."""
    arm = ARMS[index]
    command = [sys.executable, "-m", "benchmarks.sft_throughput", "--arm", str(index)]
    command += ["--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    command += [
        "--max-length",
        str(args.max_length),
        "--rows",
        str(args.rows),
        "--threads",
        str(args.threads),
    ]
    print(f"{arm.cpu} / {arm.name}: {args.steps} steps ...", flush=True)
    load = os.getloadavg()[0]
    done = subprocess.run(command, env={**os.environ, **arm.env}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"arm {arm.name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"cpu": arm.cpu, "arm": arm.name, "env": arm.env, "load_average_before": load, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, default=3, help="optimizer steps per arm (the first is not timed)"
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--rows", type=int, default=64, help="conversations in the training set")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--arm", type=int, help=argparse.SUPPRESS)  # internal: run one arm, print JSON
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2: the first step is not timed")

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.arm is not None:
        print(
            json.dumps(measure_arm(ARMS[args.arm], args.steps, args.batch_size, args.max_length, args.rows))
        )
        return

    results = [run_arm_in_child(index, args) for index in range(len(ARMS))]
    trl = {r["cpu"]: r["tokens_per_second"] for r in results if r["arm"] == "TRL defaults"}
    for result in results:
        result["speedup_vs_trl_defaults"] = result["tokens_per_second"] / trl[result["cpu"]]
    headers = ["CPU", "arm", "bf16", "gradient checkpointing", "s/step", "tokens/s", "vs TRL defaults"]
    rows = [
        [
            r["cpu"],
            r["arm"],
            r["bf16"],
            r["gradient_checkpointing"],
            r["seconds_per_step"],
            r["tokens_per_second"],
            f"{r['speedup_vs_trl_defaults']:.1f}x",
        ]
        for r in results
    ]
    table = markdown_table(headers, rows)
    threads = args.threads or torch.get_num_threads()
    note = (
        f"Tokens/s over steps 2-{args.steps} (batch {args.batch_size}, max length {args.max_length}), "
        f"torch threads: {threads}; one process per arm, run one after another."
    )
    print(f"\n{table}\n\n{note}")
    write_result(
        "sft_throughput",
        {
            "model": "embedded SmolLM2-135M-Instruct (float32 weights)",
            "cpu_native_bf16": cpu_has_native_bf16(),
            "settings": {
                "steps": args.steps,
                "batch_size": args.batch_size,
                "max_length": args.max_length,
                "rows": args.rows,
                "torch_threads": threads,
            },
            "extra_versions": {p: importlib.metadata.version(p) for p in ("accelerate", "datasets", "peft")},
            "arms": results,
        },
        markdown=f"{table}\n\n{note}",
    )


if __name__ == "__main__":
    main()
