"""Generate an instruction dataset from your own seed instructions (an Alpaca-style JSON list here)
with Evol-Instruct's random sampling, then read it with `datasets`.

    python examples/generate_own_seeds.py              # the embedded SmolLM2 model (a few minutes)
    python examples/generate_own_seeds.py --scripted   # a scripted stand-in LLM, in seconds

The same from the command line:

    teams-rl generate --policy uniform --seeds my_seeds.json --out my_dataset
"""

import json
import sys
import tempfile
from pathlib import Path

from datasets import load_dataset

from teams_rl.agents.commands import GenerateConfig
from teams_rl.agents.generation.generate import generate

seeds = [
    {"instruction": "Explain how a bicycle gear works.", "input": "", "output": ""},
    {"instruction": "Suggest a name for a bakery.", "input": "", "output": ""},
    {"instruction": "Summarize the text.", "input": "The tide rises and falls twice a day.", "output": ""},
]
folder = Path(tempfile.mkdtemp(prefix="teams-rl-example-"))
(folder / "my_seeds.json").write_text(json.dumps(seeds), encoding="utf-8")

scripted = {"expert": "scripted", "encoder": "hashing", "cache": "none"} if "--scripted" in sys.argv else {}
config = GenerateConfig(
    policy="uniform",
    seeds=str(folder / "my_seeds.json"),
    out=str(folder / "dataset"),
    answer_max_new_tokens=128,
    **scripted,
)
out = generate(config)

dataset = load_dataset("json", data_files=str(out / "dataset.jsonl"), split="train")
print(f"{len(dataset)} items in {out}")
for row in dataset.select(range(min(3, len(dataset)))):
    print(f"- [{row['action']}, step {row['step']}] {row['instruction']}")
print(json.loads((out / "stats.json").read_text())["rejected_by_rule"])
