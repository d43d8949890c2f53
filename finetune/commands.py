"""Options of the fine-tuning and evaluation commands (``sft``, ``eval``, ``privacy``, ``diversity``).

Light on purpose: the CLI imports this module for every command, so nothing heavy is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from teams_env.options import option
from teams_rl.finetune.lora_gguf import ADAPTER_DTYPES

SFT_METHODS = ("full", "lora", "qlora")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LOSS_SPANS = ("answer", "all")

PRESET_HELP = "unset: from --preset, else the default preset"


@dataclass
class SFTConfig:
    data: str = option("", "training data: dataset.jsonl with a 'messages' list per line (TRL chat format)")
    base: str = option(
        "embedded",
        "base model: embedded (SmolLM2-135M-Instruct, shipped), a local transformers folder, or a Hub "
        "name (found in the local Hugging Face cache, else downloaded)",
    )
    out: str = option("runs/sft", "output folder: model, tokenizer, training log, loss curve, model card")
    method: str = option(
        "full",
        "full fine-tuning, lora (peft adapters) or qlora (LoRA on a 4-bit NF4 base through bitsandbytes); "
        "adapters are merged into the saved model and also kept in OUT/adapter",
    )
    preset: str = option(
        "default",
        "hyperparameter preset: default (fast on CPU), paper (the paper's SFT recipe) or a YAML file; "
        "it fills the hyperparameters not given explicitly",
    )
    epochs: float | None = option(None, f"training epochs ({PRESET_HELP})")
    max_steps: int = option(-1, "stop after this many optimizer steps, overriding epochs (-1: off)")
    learning_rate: float | None = option(None, f"peak learning rate ({PRESET_HELP})")
    lr_scheduler: str | None = option(None, f"learning-rate schedule, e.g. cosine, linear ({PRESET_HELP})")
    warmup_ratio: float | None = option(None, f"share of steps spent warming up ({PRESET_HELP})")
    batch_size: int | None = option(None, f"examples per device and step ({PRESET_HELP})")
    gradient_accumulation: int | None = option(None, f"steps accumulated per update ({PRESET_HELP})")
    max_length: int | None = option(None, f"tokens per example; longer ones are truncated ({PRESET_HELP})")
    gradient_checkpointing: bool | None = option(
        None, f"recompute activations to save memory, slower ({PRESET_HELP})"
    )
    precision: str = option(
        "auto",
        "auto (bf16 mixed precision where the GPU or CPU has native bf16; else fp16 on a GPU, fp32 on a CPU), "
        "fp32, bf16 or fp16",
    )
    assistant_only_loss: bool = option(False, "train on the assistant turns only (default: the whole chat)")
    lora_rank: int = option(16, "LoRA rank (lora, qlora)")
    lora_alpha: int = option(32, "LoRA scaling alpha (lora, qlora)")
    lora_dropout: float = option(0.05, "LoRA dropout (lora, qlora)")
    lora_targets: str = option(
        "all-linear", "modules that get adapters: all-linear or a comma-separated list"
    )
    seed: int = option(0, "random seed (data order, adapter initialisation)")

    def validate(self) -> None:
        if not self.data:
            raise ValueError("data is required: --data DIR/dataset.jsonl")
        if self.method not in SFT_METHODS:
            raise ValueError(f"method must be one of {', '.join(SFT_METHODS)}, got '{self.method}'")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'")
        positive = {
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "gradient_accumulation": self.gradient_accumulation,
            "max_length": self.max_length,
            "lora_rank": self.lora_rank,
            "lora_alpha": self.lora_alpha,
        }
        for name, value in positive.items():
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be positive or -1 (off), got {self.max_steps}")
        if self.warmup_ratio is not None and not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")


DEFAULT_TASKS = ["arc_challenge", "hellaswag"]
PAPER_SHOTS = ["arc_challenge=25", "hellaswag=10"]


@dataclass
class EvalConfig:
    model: str = option(
        "", "model to evaluate: a model folder (e.g. a `teams-rl sft` output), embedded, or a Hub name"
    )
    tasks: list[str] = option(
        DEFAULT_TASKS,
        "lm-evaluation-harness tasks; the shipped offline task teams_rl_general_knowledge is always available",
    )
    shots: list[str] = option(
        PAPER_SHOTS,
        "few-shot examples per task as TASK=N (the paper's: ARC 25, HellaSwag 10); others: the task's default",
    )
    include_path: str = option("", "extra folder of task YAML files in the harness's format")
    limit: int = option(0, "evaluate only the first N documents of each task (0: all; for quick checks)")
    batch_size: int = option(8, "sequences per forward pass")
    device: str = option("auto", "auto (cuda if available, else cpu), cpu, cuda, cuda:N")
    apply_chat_template: bool = option(False, "wrap prompts in the model's chat template")
    out: str = option(
        "", "output folder for lm_eval_results.json (default: the model folder if local, else .)"
    )
    seed: int = option(0, "seed of the harness (few-shot sampling)")

    def validate(self) -> None:
        if not self.model:
            raise ValueError("model is required: --model DIR")
        if not self.tasks:
            raise ValueError("tasks must name at least one task")
        if self.limit < 0:
            raise ValueError(f"limit must be 0 (all) or positive, got {self.limit}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


@dataclass
class PrivacyConfig:
    model: str = option("", "model under attack: a model folder, embedded, or a Hub name")
    members: str = option(
        "", "examples the model was trained on (dataset.jsonl with messages, or JSONL with text)"
    )
    non_members: str = option("", "examples it never saw, same format")
    out: str = option(
        "", "output folder for privacy.json and roc_curve.png (default: the model folder if local, else .)"
    )
    loss_on: str = option(
        "answer", "tokens whose mean loss is the score: answer (the last assistant turn) or all (whole text)"
    )
    max_length: int = option(512, "tokens per example; longer ones are truncated")
    batch_size: int = option(8, "examples per forward pass")
    bootstrap: int = option(1000, "bootstrap resamples of the AUC confidence interval")
    confidence: float = option(0.95, "confidence level of the interval")
    seed: int = option(0, "seed of the bootstrap")
    device: str = option("auto", "auto (cuda if available, else cpu), cpu, cuda, cuda:N")

    def validate(self) -> None:
        for name in ("model", "members", "non_members"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required: --{name.replace('_', '-')}")
        if self.loss_on not in LOSS_SPANS:
            raise ValueError(f"loss_on must be one of {', '.join(LOSS_SPANS)}, got '{self.loss_on}'")
        if self.max_length < 2 or self.batch_size < 1:
            raise ValueError("max_length must be at least 2 and batch_size at least 1")
        if self.bootstrap < 1:
            raise ValueError(f"bootstrap must be at least 1, got {self.bootstrap}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")


@dataclass
class DiversityConfig:
    files: list[str] = option(
        [],
        "instruction files: dataset.jsonl, Alpaca JSON, JSONL with instruction or text, or .txt one per line",
    )
    encoder: str = option(
        "default",
        "sentence encoder: default (all-MiniLM-L6-v2, embedded), a sentence-transformers name, or hashing",
    )
    out: str = option("", "also write the metrics to this JSON file")
    subsample: int = option(
        0,
        "items per random subset for the size-controlled Vendi score (the raw score grows with the "
        "number of items); 0: the smallest file's size",
    )
    resamples: int = option(200, "random subsets per file for the size-controlled Vendi score")
    seed: int = option(0, "seed of the random subsets")

    def validate(self) -> None:
        if not self.files:
            raise ValueError("name at least one instruction file")
        if self.subsample < 0 or self.subsample == 1 or self.resamples < 1:
            raise ValueError(
                f"subsample must be 0 or at least 2 and resamples at least 1, got {self.subsample} and {self.resamples}"
            )


@dataclass
class ExpertTrainConfig(SFTConfig):
    """``teams-rl train-expert``: the specialist expert, a LoRA adapter trained on demonstrations of
    the six rewrites and written as a llama.cpp GGUF adapter for the embedded base."""

    data: str = option(
        "bundled",
        "demonstrations: bundled (the project's, read against the rubric) or a JSONL file with "
        "action, instruction and rewrite per line",
    )
    base: str = option(
        "embedded",
        "base model: embedded (SmolLM2-135M-Instruct, the GGUF the adapter is applied to) or a local "
        "transformers folder of a Llama-architecture model",
    )
    out: str = option("runs/expert", "output folder: checkpoints, adapter, expert-lora.gguf, log, loss curve")
    method: str = option("lora", "lora (the only method llama.cpp can apply as an adapter)")
    preset: str = option(
        "expert", "hyperparameter preset (expert: measured for the specialist) or a YAML file"
    )
    lora_targets: str = option(
        "all-linear", "modules that get adapters: all-linear or a comma-separated list"
    )
    save_steps: int = option(25, "save a checkpoint every this many steps; a rerun resumes from the last")
    adapter_dtype: str = option(
        "q5_1",
        "storage of the GGUF adapter: q5_1 (llama.cpp's answers do not depend on the batch), f16 or f32",
    )

    def validate(self) -> None:
        super().validate()
        if self.method != "lora":
            raise ValueError(f"method must be lora (llama.cpp applies LoRA adapters), got '{self.method}'")
        if self.save_steps < 1:
            raise ValueError(f"save_steps must be at least 1, got {self.save_steps}")
        if self.adapter_dtype not in ADAPTER_DTYPES:
            raise ValueError(
                f"adapter_dtype must be one of {', '.join(ADAPTER_DTYPES)}, got '{self.adapter_dtype}'"
            )
