"""finetune: the last stage of TeaMs-RL. One SFT step on the generated dataset (TRL: full, LoRA or
QLoRA), benchmarks through lm-evaluation-harness, a membership-inference attack, and diversity
metrics of instruction files. Each command's module is imported only when it runs."""
