"""``teams-rl train-expert``: train the specialist expert with TRL and write it as a llama.cpp adapter.

A LoRA adapter on the base model learns to answer the specialist prompt
(:func:`teams_env.actions.specialist_conversation`) with the demonstrated rewrite; the loss is on the
rewrite only. Checkpoints are saved every ``save_steps``, and a rerun with the same output folder
resumes from the last one. The adapter is then written as ``expert-lora.gguf``, which the
``specialist`` backend applies to the embedded GGUF: ``--expert "specialist?lora=OUT/expert-lora.gguf"``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from teams_rl.finetune.commands import ExpertTrainConfig
from teams_rl.finetune.demonstrations import Demonstration, read_demonstrations
from teams_rl.finetune.device import resolve_device, resolve_precision
from teams_rl.finetune.lora_gguf import write_gguf_adapter
from teams_rl.finetune.models import load_causal_lm, load_tokenizer, resolve_model
from teams_rl.finetune.presets import apply_preset
from teams_rl.finetune.sft import ADAPTER_DIR, lora_config, summarize, training_arguments, write_training_log

logger = logging.getLogger(__name__)

GGUF_ADAPTER = "expert-lora.gguf"


def prompt_completion_rows(demonstrations: list[Demonstration], tokenizer: Any) -> list[dict[str, str]]:
    """TRL prompt-completion rows: the prompt rendered with the base model's chat template (the
    text llama.cpp renders from the same template), the rewrite as the completion (TRL appends the
    end-of-turn token and computes the loss on the completion only)."""
    rows = []
    for demonstration in demonstrations:
        messages, rewrite = demonstration.prompt_completion()
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        rows.append({"prompt": prompt, "completion": rewrite})
    return rows


def last_checkpoint(out: Path) -> str | None:
    """The newest ``checkpoint-N`` folder of an earlier run in ``out``, to resume from."""
    checkpoints = [path for path in out.glob("checkpoint-*") if path.name.split("-")[-1].isdigit()]
    if not checkpoints:
        return None
    return str(max(checkpoints, key=lambda path: int(path.name.split("-")[-1])))


def run(config: ExpertTrainConfig) -> int:
    config = apply_preset(config)
    demonstrations = read_demonstrations(config.data)  # bad data fails before any model loads
    base_path = resolve_model(config.base)
    base_config = json.loads((Path(base_path) / "config.json").read_text(encoding="utf-8"))
    if base_config.get("model_type") != "llama":
        raise ValueError(
            f"base {config.base}: llama.cpp adapters are written for Llama-architecture bases only, "
            f"got '{base_config.get('model_type')}'"
        )
    device = resolve_device("auto")
    precision = resolve_precision(config.precision, device)
    out = Path(config.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)

    from datasets import Dataset
    from trl import SFTConfig as TRLConfig
    from trl import SFTTrainer

    tokenizer = load_tokenizer(base_path)
    arguments = training_arguments(config, precision, device, out)
    arguments.update(
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        completion_only_loss=True,
        # Batches of similar lengths: less padding, and on a CPU time is proportional to tokens.
        train_sampling_strategy="group_by_length",
    )
    trainer = SFTTrainer(
        model=load_causal_lm(base_path, precision=precision),
        args=TRLConfig(**arguments),
        train_dataset=Dataset.from_list(prompt_completion_rows(demonstrations, tokenizer)),
        processing_class=tokenizer,
        peft_config=lora_config(config),
    )
    resume = last_checkpoint(out)
    logger.info(
        "training the specialist expert on %d demonstrations (%s, %s)%s",
        len(demonstrations),
        device,
        precision,
        f", resuming from {resume}" if resume else "",
    )
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(out / ADAPTER_DIR))
    steps, summary = summarize(trainer, len(demonstrations))
    adapter = write_gguf_adapter(
        out / ADAPTER_DIR, base_config, out / GGUF_ADAPTER, dtype=config.adapter_dtype
    )
    log = {
        "config": asdict(config),
        "base_path": base_path,
        "device": device,
        "precision": precision,
        "resumed_from": resume,
        "summary": asdict(summary),
        "steps": steps,
    }
    write_training_log(
        out, log, steps, title=f"specialist expert on {config.base} (LoRA rank {config.lora_rank})"
    )
    print(
        f"saved the specialist expert to {adapter} ({adapter.stat().st_size / 1e6:.1f} MB): mean loss "
        f"{summary.train_loss:.3f} over {summary.steps} steps\n"
        f'use it: --expert "specialist?lora={adapter}"'
    )
    return 0
