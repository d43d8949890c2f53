"""Environment speed on the embedded model, measured side by side in one run:

1. env steps/s, one environment vs 8 sub-environments of the batched vector env (same seeds, same
   actions, cache off), for each backend;
2. the expert alone: the same rewrites one request at a time vs in one call (continuous batching),
   which bounds what the vector env can gain;
3. the reviewer's cost per judgement: likelihood of the two labels vs a generated verdict (our
   4-token fallback, and a free-form answer of up to 64 tokens as the authors' code allows);
4. a cached re-run of the same episodes (no LLM calls);
5. the environment's own overhead per step, with the scripted backend.

    python -m benchmarks.env_throughput [--backends llamacpp,hf] [--episodes 8]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Timer, markdown_table, write_result
from teams_env.actions import ACTIONS
from teams_env.engine import RewriteEngine
from teams_env.env import TeaMsInstructEnv
from teams_env.env_config import ENV_DEFAULTS
from teams_env.llm.base import GenerationParams
from teams_env.llm.registry import shared_backend
from teams_env.llm.scripted import ScriptedBackend
from teams_env.llm.service import LLMService
from teams_env.reward.reviewer import Reviewer, parse_verdict, review_conversation
from teams_env.seeds import load_seeds
from teams_env.vector import TeaMsInstructVecEnv

N_ENVS = 8
EXTENSION = " Include at least three concrete examples and end with a short summary table."


def actions_for(episode: int, step: int) -> int:
    return (episode + step) % 6


def single_env_steps(env: TeaMsInstructEnv, episodes: range) -> int:
    steps = 0
    for episode in episodes:
        env.reset(seed=episode)
        for step in range(env.max_steps):
            env.step(actions_for(episode, step))
            steps += 1
    return steps


def vector_env_steps(venv: TeaMsInstructVecEnv, first_seed: int, max_steps: int) -> int:
    venv.seed(first_seed)
    venv.reset()
    for step in range(max_steps):
        venv.step(np.array([actions_for(first_seed + i, step) for i in range(venv.num_envs)]))
    return venv.num_envs * max_steps


def throughput(backend: str, episodes: int) -> dict[str, Any]:
    kwargs = {"expert": backend, "action_type": "discrete", "cache": None, "reviewer_threshold": 0.5}
    single = TeaMsInstructEnv(**kwargs)
    venv = TeaMsInstructVecEnv(N_ENVS, **kwargs)
    # Warm-up on other seeds: models loaded, the few-shot preambles in the KV cache for both arms.
    single_env_steps(single, range(100, 101))
    vector_env_steps(venv, 200, 1)
    rounds = max(1, episodes // N_ENVS)
    with Timer() as one:
        one_steps = single_env_steps(single, range(rounds * N_ENVS))
    with Timer() as batched:
        batched_steps = sum(vector_env_steps(venv, r * N_ENVS, single.max_steps) for r in range(rounds))
    return {
        "backend": backend,
        "steps": one_steps,
        "single_steps_per_s": one_steps / one.seconds,
        "vector_steps_per_s": batched_steps / batched.seconds,
        "speedup": (batched_steps / batched.seconds) / (one_steps / one.seconds),
    }


def expert_batching(backend: str, n_seeds: int) -> dict[str, Any]:
    """Every action on ``n_seeds`` seeds: one request at a time, then all in one call (the backend
    decodes up to its ``max_batch`` answers together). Same requests, same backend, greedy."""
    seeds = [s.text for s in load_seeds().seeds][100 : 100 + n_seeds]
    engine = RewriteEngine(
        LLMService(shared_backend(backend), "expert"),
        None,
        GenerationParams(max_new_tokens=ENV_DEFAULTS.max_new_tokens),
    )
    requests = [(seed, action) for seed in seeds for action in range(len(ACTIONS))]
    engine.rewrite(requests[:2])  # the few-shot preambles in the KV cache for both arms
    with Timer() as alone:
        one_by_one = [engine.rewrite([request])[0] for request in requests]
    with Timer() as together:
        batched = engine.rewrite(requests)
    return {
        "backend": backend,
        "rewrites": len(requests),
        "one_at_a_time_per_s": len(requests) / alone.seconds,
        "one_call_per_s": len(requests) / together.seconds,
        "speedup": alone.seconds / together.seconds,
        "identical_texts": sum(a.text == b.text for a, b in zip(one_by_one, batched)),
    }


def reviewer_cost(backend: str, n_pairs: int) -> dict[str, Any]:
    seeds = [s.text for s in load_seeds().seeds if not s.input][:n_pairs]
    pairs = [(s, s + EXTENSION) for s in seeds]
    model = shared_backend(backend)
    likelihood = Reviewer(LLMService(model, "reviewer"), method="likelihood", threshold=0.5)
    generated = Reviewer(LLMService(model, "reviewer"), method="generate")
    free_form = LLMService(model, "reviewer")
    free_params = GenerationParams(max_new_tokens=64, repetition_penalty=1.0)
    for judge in (likelihood.judge, generated.judge):  # warm the reviewer preamble
        judge(pairs[:2])
    free_form.generate([review_conversation(*pairs[0])], free_params)

    timings: dict[str, float] = {}
    with Timer() as t:
        by_likelihood = likelihood.judge(pairs)
    timings["likelihood"] = t.seconds
    with Timer() as t:
        by_generation = generated.judge(pairs)
    timings["generated_4_tokens"] = t.seconds
    with Timer() as t:
        answers = free_form.generate([review_conversation(a, b) for a, b in pairs], free_params)
    timings["generated_free_form"] = t.seconds
    parsed = [parse_verdict(a.text) for a in answers]
    return {
        "backend": backend,
        "pairs": len(pairs),
        "seconds_per_judgement": {k: v / len(pairs) for k, v in timings.items()},
        "likelihood_cheaper_than": {
            k: v / timings["likelihood"] for k, v in timings.items() if k != "likelihood"
        },
        "generated_tokens_free_form": sum(a.completion_tokens for a in answers),
        "not_equal_rate": {
            "likelihood": float(np.mean([j.not_equal for j in by_likelihood])),
            "generated_4_tokens": float(np.mean([j.not_equal for j in by_generation])),
            "generated_free_form_parsed": float(np.mean([p == "Not Equal" for p in parsed])),
            "generated_free_form_unparseable": float(np.mean([p is None for p in parsed])),
        },
    }


def cached_rerun(backend: str, episodes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder) / "cache.sqlite"
        kwargs = {"expert": backend, "action_type": "discrete", "cache": cache, "reviewer_threshold": 0.5}
        first = TeaMsInstructEnv(**kwargs)
        with Timer() as cold:
            steps = single_env_steps(first, range(episodes))
        again = TeaMsInstructEnv(**kwargs)
        with Timer() as warm:
            single_env_steps(again, range(episodes))
    return {
        "backend": backend,
        "steps": steps,
        "first_run_seconds": cold.seconds,
        "first_run_queries": first.ledger.total().queries,
        "rerun_seconds": warm.seconds,
        "rerun_queries": again.ledger.total().queries,
        "rerun_cache_hits": again.ledger.total().cache_hits,
    }


def overhead(encoder: str) -> dict[str, Any]:
    """Seconds per step that are not model calls (scripted backend; the encoder is named)."""
    env = TeaMsInstructEnv(expert=ScriptedBackend(), encoder=encoder, cache=None, reviewer_threshold=0.5)
    env.reset(seed=0)
    actions = itertools.cycle(env.codec.prototypes)
    steps = 600
    with Timer() as t:
        for step in range(steps):
            if step % env.max_steps == 0:
                env.reset(seed=step)
            env.step(next(actions))
    return {"encoder": encoder, "steps": steps, "ms_per_step": 1000 * t.seconds / steps}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="llamacpp,hf", help="comma-separated backend specs")
    parser.add_argument(
        "--episodes", type=int, default=8, help="episodes per arm (rounded to multiples of 8)"
    )
    parser.add_argument(
        "--batching-seeds", type=int, default=8, help="seeds (x 6 actions) for the expert-alone comparison"
    )
    parser.add_argument("--pairs", type=int, default=24, help="instruction pairs for the reviewer comparison")
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]

    speed = [throughput(b, args.episodes) for b in backends]
    batching = [expert_batching(b, args.batching_seeds) for b in backends]
    review = [reviewer_cost(b, args.pairs) for b in backends]
    rerun = cached_rerun(backends[0], 2)
    own = [overhead("hashing"), overhead("default")]

    rows = []
    for s in speed:
        rows.append(
            [
                f"env steps/s, {s['backend']}",
                f"{s['single_steps_per_s']:.2f} (1 env)",
                f"{s['vector_steps_per_s']:.2f} (8 envs)",
                f"{s['speedup']:.1f}x",
            ]
        )
    for b in batching:
        rows.append(
            [
                f"expert rewrites/s, {b['backend']} ({b['identical_texts']}/{b['rewrites']} texts identical)",
                f"{b['one_at_a_time_per_s']:.2f} (one at a time)",
                f"{b['one_call_per_s']:.2f} (one call)",
                f"{b['speedup']:.2f}x",
            ]
        )
    for r in review:
        per = r["seconds_per_judgement"]
        rows.append(
            [
                f"reviewer s/judgement, {r['backend']}",
                f"{per['likelihood']:.3f} (likelihood)",
                f"{per['generated_4_tokens']:.3f} (generated, 4 tokens)",
                f"{r['likelihood_cheaper_than']['generated_4_tokens']:.1f}x",
            ]
        )
        rows.append(
            [
                f"reviewer s/judgement, {r['backend']}",
                f"{per['likelihood']:.3f} (likelihood)",
                f"{per['generated_free_form']:.3f} (generated, free form)",
                f"{r['likelihood_cheaper_than']['generated_free_form']:.1f}x",
            ]
        )
    rows.append(
        [
            f"cached re-run, {rerun['backend']}, {rerun['steps']} steps",
            f"{rerun['first_run_seconds']:.1f} s, {rerun['first_run_queries']} LLM calls",
            f"{rerun['rerun_seconds']:.2f} s, {rerun['rerun_queries']} LLM calls",
            f"{rerun['first_run_seconds'] / rerun['rerun_seconds']:.0f}x",
        ]
    )
    for o in own:
        rows.append(
            [
                f"env overhead per step (scripted LLM, {o['encoder']} encoder)",
                f"{o['ms_per_step']:.3f} ms",
                "",
                "",
            ]
        )
    table = markdown_table(["measure", "baseline", "ours", "ratio"], rows)
    print(table)
    markdown = f"# Environment throughput\n\n{table}\n\nOne run on one machine; see env_throughput.json for the machine and the command.\n"
    path = write_result(
        "env_throughput",
        {
            "throughput": speed,
            "expert_batching": batching,
            "reviewer": review,
            "cached_rerun": rerun,
            "overhead": own,
        },
        markdown,
    )
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
