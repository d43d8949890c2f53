"""``teams-rl sft``: one supervised fine-tuning step on a generated dataset, with TRL's SFTTrainer.

Full fine-tuning, LoRA or QLoRA (LoRA on a 4-bit NF4 base). LoRA adapters are kept in
``OUT/adapter`` and merged into a full model in ``OUT``, so ``eval`` and ``privacy`` load every
method's output the same way. The output folder also holds the training log, the loss curve and a
model card. Runs unchanged under ``accelerate launch`` (only the main process writes files).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teams_rl.finetune.commands import SFTConfig
from teams_rl.finetune.device import resolve_device, resolve_precision
from teams_rl.finetune.figures import save_line_plot
from teams_rl.finetune.model_card import write_model_card
from teams_rl.finetune.models import load_causal_lm, load_tokenizer, resolve_model
from teams_rl.finetune.presets import apply_preset
from teams_rl.finetune.records import Conversation, read_conversations

if TYPE_CHECKING:
    from peft import LoraConfig
    from trl import SFTTrainer

logger = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"
TRAINING_LOG = "training_log.json"
LOSS_CURVE = "loss_curve.png"
STEP_KEYS = ("step", "epoch", "loss", "learning_rate", "grad_norm", "num_tokens")


def _checkpointing_argument() -> str:
    """transformers 5.2x renamed ``gradient_checkpointing`` (the old name still works, with a warning)."""
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"


def training_arguments(config: SFTConfig, precision: str, device: str, out: Path) -> dict[str, Any]:
    """Keyword arguments of ``trl.SFTConfig`` for a resolved ``config`` (every preset field set).

    bf16/fp16 and gradient checkpointing are always set: TRL turns both on by default, and on a CPU
    checkpointing costs about a third more time while emulated bf16 (a CPU without native bf16)
    made a step about 9x slower (``benchmarks/sft_throughput.py``).
    """
    return {
        "output_dir": str(out),
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup_ratio,  # a float below 1 is a share of the steps
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation,
        "max_length": config.max_length,
        _checkpointing_argument(): config.gradient_checkpointing,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "use_cpu": device == "cpu",  # transformers refuses bf16 on a CPU unless told it is one
        "assistant_only_loss": config.assistant_only_loss,
        "seed": config.seed,
        "logging_steps": 1,  # the loss curve and the log get every step
        "save_strategy": "no",  # the final model is saved once, below
        "report_to": "none",
    }


def lora_config(config: SFTConfig) -> LoraConfig:
    from peft import LoraConfig

    targets: str | list[str] = config.lora_targets
    if targets != "all-linear":
        targets = [name.strip() for name in config.lora_targets.split(",") if name.strip()]
    return LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


@dataclass
class TrainingSummary:
    rows: int
    steps: int
    first_loss: float
    final_loss: float
    train_loss: float
    train_runtime_s: float
    tokens: int
    tokens_per_second: float


def build_trainer(
    config: SFTConfig,
    conversations: list[Conversation],
    base_path: str,
    precision: str,
    arguments: dict[str, Any],
) -> SFTTrainer:
    """An SFTTrainer for ``config`` (resolved) with ``arguments`` for ``trl.SFTConfig``: normally
    :func:`training_arguments`; the benchmark passes TRL's defaults instead."""
    from accelerate import PartialState
    from datasets import Dataset
    from trl import SFTConfig as TRLConfig
    from trl import SFTTrainer

    quantized = config.method == "qlora"
    # Full fine-tuning keeps fp32 master weights (mixed precision computes in bf16/fp16); a frozen
    # LoRA base is stored in the compute precision to save memory.
    base_precision = "fp32" if config.method == "full" else precision
    model = load_causal_lm(
        base_path,
        precision=base_precision,
        load_in_4bit=quantized,
        # 4-bit weights are placed at load time, on this process's device under `accelerate launch`
        device=str(PartialState().device) if quantized else None,
    )
    return SFTTrainer(
        model=model,
        args=TRLConfig(**arguments),
        train_dataset=Dataset.from_list([{"messages": c} for c in conversations]),
        processing_class=load_tokenizer(base_path),
        peft_config=None if config.method == "full" else lora_config(config),
    )


def summarize(trainer: SFTTrainer, rows: int) -> tuple[list[dict[str, float]], TrainingSummary]:
    """The logged training steps, and the run's totals (tokens: non-padding positions, TRL's count)."""
    history = trainer.state.log_history
    steps = [{k: entry[k] for k in STEP_KEYS if k in entry} for entry in history if "loss" in entry]
    final = next(entry for entry in reversed(history) if "train_runtime" in entry)
    tokens = int(steps[-1].get("num_tokens", 0)) if steps else 0
    runtime = float(final["train_runtime"])
    summary = TrainingSummary(
        rows=rows,
        steps=trainer.state.global_step,
        first_loss=float(steps[0]["loss"]) if steps else float("nan"),
        final_loss=float(steps[-1]["loss"]) if steps else float("nan"),
        train_loss=float(final["train_loss"]),
        train_runtime_s=runtime,
        tokens=tokens,
        tokens_per_second=tokens / runtime if runtime > 0 else 0.0,
    )
    return steps, summary


def write_training_log(out: Path, log: dict[str, Any], steps: list[dict[str, float]], *, title: str) -> None:
    """The run's log (options, summary, every step) and its loss curve."""
    (out / TRAINING_LOG).write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
    if steps:
        save_line_plot(
            out / LOSS_CURVE,
            {"training loss": ([s["step"] for s in steps], [s["loss"] for s in steps])},
            title=title,
            xlabel="optimizer step",
            ylabel="loss",
        )


def _merge_adapter(adapter_dir: Path, base_path: str, out: Path) -> None:
    """Reload the base unquantized in its stored dtype, apply the adapter, and save the merged
    model: one loadable folder for every method (a 4-bit base cannot take merged weights)."""
    from peft import PeftModel

    base = load_causal_lm(base_path)
    PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload().save_pretrained(out)


def save_outputs(
    trainer: SFTTrainer, config: SFTConfig, rows: int, base_path: str, precision: str, out: Path
) -> TrainingSummary:
    """Model (merged for LoRA), tokenizer with its chat template, log, loss curve, model card."""
    if config.method == "full":
        trainer.save_model(str(out))
    else:
        trainer.save_model(str(out / ADAPTER_DIR))
    trainer.accelerator.wait_for_everyone()
    steps, summary = summarize(trainer, rows)
    if not trainer.is_world_process_zero():
        return summary
    if config.method != "full":
        _merge_adapter(out / ADAPTER_DIR, base_path, out)
    trainer.processing_class.save_pretrained(out)
    log = {
        "config": asdict(config),
        "base_path": base_path,
        "precision": precision,
        "summary": asdict(summary),
        "steps": steps,
    }
    write_training_log(out, log, steps, title=f"SFT of {config.base} ({config.method})")
    write_model_card(out, config=config, base_path=base_path, precision=precision, summary=asdict(summary))
    return summary


def run(config: SFTConfig) -> int:
    config = apply_preset(config)
    conversations = read_conversations(config.data)  # bad data fails before any model loads
    base_path = resolve_model(config.base)
    device = resolve_device("auto")
    precision = resolve_precision(config.precision, device)
    out = Path(config.out).expanduser()
    logger.info(
        "fine-tuning %s (%s, %s) on %d conversations from %s",
        config.base,
        config.method,
        precision,
        len(conversations),
        config.data,
    )
    trainer = build_trainer(
        config, conversations, base_path, precision, training_arguments(config, precision, device, out)
    )
    trainer.train()
    summary = save_outputs(trainer, config, len(conversations), base_path, precision, out)
    if trainer.is_world_process_zero():
        print(
            f"saved {config.method} fine-tune of {config.base} to {out}: loss {summary.first_loss:.3f} -> "
            f"{summary.final_loss:.3f} over {summary.steps} steps, {summary.tokens_per_second:.0f} tokens/s"
        )
    return 0
