"""TRPO against uniform random rewrites on the real embedded model (SmolLM2-135M as expert and
reviewer), over several training seeds.

For each seed: train TRPO (the shipped trpo.yml) for a fixed number of environment steps, one
reviewer request each, on the bundled seed instructions outside the held-out set; then run the
trained policy (sampling its actions, as the authors' generation code does, and again taking its
mean action) and the uniform random agent for one episode from each held-out instruction. The
evaluations run the same episodes, so they make the same number of reviewer requests (less any
failed rewrite, which needs no verdict); TRPO also spent the training budget, which the report
states. One shared,
initially empty LLM cache serves the whole benchmark, so repeated requests are answered once.

    python -m benchmarks.trpo_vs_random [--seeds 0,1,2] [--train-steps 192] [--held-out 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.config import TrainConfig
from agents.evaluate import EvaluationResult, evaluate_agent
from agents.train import train
from benchmarks.common import Timer, markdown_table, write_result
from teams_env.seeds import SeedInstruction, load_seeds


@dataclass(frozen=True)
class EvaluatedAgent:
    name: str
    label: str
    trained: bool
    deterministic: bool


AGENTS = (
    EvaluatedAgent("trpo", "TRPO, sampled actions", trained=True, deterministic=False),
    EvaluatedAgent("trpo_mean", "TRPO, mean action", trained=True, deterministic=True),
    EvaluatedAgent("uniform", "uniform random", trained=False, deterministic=False),
)


def _summary(result: EvaluationResult, seconds: float) -> dict[str, Any]:
    report = result.as_dict()
    keys = ("mean_return", "std_return", "not_equal_rate", "reviewer_verdicts", "action_frequencies")
    return {key: report[key] for key in (*keys, "per_step", "queries")} | {"seconds": round(seconds, 1)}


def run_seed(
    seed: int, args: argparse.Namespace, workdir: Path, train_seeds: Path, held_out: list[SeedInstruction]
) -> dict[str, Any]:
    config = TrainConfig(
        expert=args.expert,
        seeds=str(train_seeds),
        max_new_tokens=args.max_new_tokens,
        cache=str(workdir / "llm-cache.sqlite"),
        total_timesteps=args.train_steps,
        n_envs=args.n_envs,
        seed=seed,
        runs_dir=str(workdir / "runs"),
        checkpoint_freq=args.train_steps,
        progress_bar=False,
    )
    with Timer() as training:
        run_dir = train(config)
    env_kwargs = {**config.env_kwargs(), "action_type": "continuous"}
    outcome: dict[str, Any] = {
        "seed": seed,
        "training": {
            "steps": args.train_steps,
            "queries": json.loads((run_dir / "queries.json").read_text()),
            "seconds": round(training.seconds, 1),
        },
    }
    for agent in AGENTS:
        policy = str(run_dir) if agent.trained else agent.name
        with Timer() as evaluation:
            result = evaluate_agent(
                policy, held_out, env_kwargs, n_envs=args.n_envs, seed=seed, deterministic=agent.deterministic
            )
        outcome[agent.name] = _summary(result, evaluation.seconds)
        print(agent.label, result.format_table(), "\n", sep="\n", flush=True)
    return outcome


def markdown(payload: dict[str, Any]) -> str:
    runs, settings = payload["runs"], payload["settings"]
    rows = [
        [
            outcome["seed"],
            agent.label,
            f"{outcome[agent.name]['mean_return']:.2f} ± {outcome[agent.name]['std_return']:.2f}",
            outcome[agent.name]["not_equal_rate"],
            outcome[agent.name]["reviewer_verdicts"],
            outcome["training"]["steps"] if agent.trained else 0,
        ]
        for outcome in runs
        for agent in AGENTS
    ]
    summary = []
    for agent in AGENTS:
        frequencies = {
            name: statistics.mean(outcome[agent.name]["action_frequencies"][name] for outcome in runs)
            for name in runs[0][agent.name]["action_frequencies"]
        }
        summary.append(
            f"- {agent.label}: mean return {payload['mean_over_seeds'][agent.name]:.2f} over seeds; actions "
            + ", ".join(f"{name} {value:.2f}" for name, value in frequencies.items())
        )
    machine = payload["machine"]
    return "\n".join(
        [
            "# TRPO vs uniform random rewrites (real embedded model)",
            "",
            f"Command: `{payload['command']}`  ",
            f"Date: {payload['date']}  ",
            f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB, "
            f"accelerator: {machine['accelerator']}  ",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
            "",
            f"Expert and reviewer: SmolLM2-135M-Instruct (Q4_1 GGUF, llama.cpp, `{settings['expert']}`), "
            f"greedy, at most {settings['max_new_tokens']} new tokens a rewrite; encoder all-MiniLM-L6-v2. "
            f"TRPO: agents/hyperparams/trpo.yml, {settings['n_envs']} sub-environments, "
            f"{settings['train_steps']} training steps (one reviewer request each) on "
            f"{settings['train_seed_count']} bundled seed instructions. Evaluation: one 6-step episode "
            f"from each of {settings['held_out']} held-out instructions per agent; TRPO both sampling its "
            "Gaussian policy (as the authors' generation code does) and taking its mean action.",
            "",
            markdown_table(
                ["seed", "agent", "mean return (of 6)", "Not-Equal rate", "eval verdicts", "training steps"],
                rows,
            ),
            "",
            *summary,
            "",
            "Eval verdicts count the reviewer's judgements in each evaluation (a failed rewrite, e.g. the "
            "expert returning the instruction unchanged, is Equal without one); training steps are the "
            "reviewer requests TRPO spent before its evaluation. Model queries, cache hits and tokens of "
            "every phase, per-step Not-Equal rates and action frequencies are in the JSON file beside "
            "this one.",
            "",
            f"Caveat: {len(runs)} training runs of {settings['train_steps']} steps each and "
            f"{settings['held_out']} evaluation episodes per agent and seed; the reviewer is a 135M "
            "model whose verdicts are noisy. Differences of a few tenths are within the spread across "
            "seeds and episodes and do not show that one agent is better.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="0,1,2", help="training seeds, comma-separated")
    parser.add_argument("--train-steps", type=int, default=192, help="TRPO environment steps per seed")
    parser.add_argument("--held-out", type=int, default=16, help="held-out instructions (episodes per agent)")
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64, help="expert's token limit per rewrite")
    parser.add_argument(
        "--expert",
        default="llamacpp",
        help="expert and reviewer backend; llamacpp?n_threads=1 copes better with a busy machine",
    )
    parser.add_argument("--name", default="trpo_vs_random", help="result file name in benchmarks/results/")
    args = parser.parse_args()

    seeds = load_seeds().seeds
    train_part, held_out = seeds[: -args.held_out], seeds[-args.held_out :]
    with tempfile.TemporaryDirectory(prefix="trpo-vs-random-") as tmp:
        workdir = Path(tmp)
        train_seeds = workdir / "train_seeds.jsonl"
        train_seeds.write_text(
            "".join(
                json.dumps({"id": s.id, "instruction": s.instruction, "input": s.input}) + "\n"
                for s in train_part
            )
        )
        runs = [run_seed(int(seed), args, workdir, train_seeds, held_out) for seed in args.seeds.split(",")]

    payload = {
        "settings": {
            "train_steps": args.train_steps,
            "held_out": args.held_out,
            "held_out_ids": [s.id for s in held_out],
            "train_seed_count": len(train_part),
            "n_envs": args.n_envs,
            "max_new_tokens": args.max_new_tokens,
            "expert": args.expert,
        },
        "runs": runs,
        "mean_over_seeds": {
            agent.name: statistics.mean(outcome[agent.name]["mean_return"] for outcome in runs)
            for agent in AGENTS
        },
    }
    path = write_result(args.name, payload)
    record = json.loads(path.read_text())  # the payload plus date, command and machine
    path.with_suffix(".md").write_text(markdown(record) + "\n", encoding="utf-8")
    print(path.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
