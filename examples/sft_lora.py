"""Fine-tune the embedded SmolLM2-135M with LoRA on a dataset in TRL's `messages` format, then ask
the merged model a question.

    python examples/sft_lora.py            # 3 epochs over a small dataset (a few minutes on a CPU)
    python examples/sft_lora.py --tiny     # 2 optimizer steps, to check the set-up (under a minute)

It writes to runs/sft_lora_example/ under the current folder (the merged model is about 540 MB; a
rerun replaces it).

The same from the command line (a dataset from `teams-rl generate` works as it is):

    teams-rl sft --data my_dataset/dataset.jsonl --method lora --out my_model
"""

import json
import sys
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from teams_rl.finetune.commands import SFTConfig
from teams_rl.finetune.sft import run

pairs = [
    ("Name a primary colour.", "Red is a primary colour."),
    ("What is the boiling point of water at sea level?", "100 degrees Celsius."),
    ("Give a synonym for 'quick'.", "Fast."),
    ("How many legs does a spider have?", "A spider has eight legs."),
] * 4
folder = Path("runs") / "sft_lora_example"
folder.mkdir(parents=True, exist_ok=True)
data = folder / "dataset.jsonl"
with data.open("w", encoding="utf-8") as handle:
    for question, answer in pairs:
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        handle.write(json.dumps({"messages": messages}) + "\n")

tiny = {"max_steps": 2} if "--tiny" in sys.argv else {}
run(SFTConfig(data=str(data), method="lora", out=str(folder / "model"), epochs=3, batch_size=4, **tiny))

tokenizer = AutoTokenizer.from_pretrained(folder / "model")
model = AutoModelForCausalLM.from_pretrained(folder / "model")
prompt = tokenizer.apply_chat_template(
    [{"role": "user", "content": "How many legs does a spider have?"}],
    add_generation_prompt=True,
    return_tensors="pt",
    return_dict=True,
)
answer = model.generate(**prompt, max_new_tokens=20, do_sample=False)
print("answer:", tokenizer.decode(answer[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True))
print("model, loss curve and model card in", folder / "model")
