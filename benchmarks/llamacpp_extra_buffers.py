"""What llama.cpp's extra buffer types are worth on this CPU: the price of the AMX protection.

On builds with AMX kernels the llamacpp backend loads weights without extra buffers, since the
repacked AMX buffers segfault on the first decode (:mod:`teams_env.llm.llamacpp_build`). Extra
buffers also hold the repacked layouts of Q4_0 and Q4_K weights on AVX2 CPUs, so turning them off
everywhere would cost those models speed. This measures both arms side by side, in one process,
alternating rounds: the embedded Q4_1 model, and a Q4_0 requantization of it (made once, cached).
On an AMX build the "on" arm is skipped: it crashes.

    python -m benchmarks.llamacpp_extra_buffers [--rounds 3] [--requests 16] [--tokens 64]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from benchmarks.common import Timer, markdown_table, write_result
from teams_env.llm.base import GenerationParams
from teams_env.llm.cache import default_cache_path
from teams_env.llm.embedded import embedded_gguf_path
from teams_env.llm.llamacpp import LlamaCppBackend
from teams_env.llm.llamacpp_build import build_features, build_has_amx
from teams_env.seeds import load_seeds


def requantized_q4_0() -> Path:
    """The embedded model requantized to Q4_0 (which llama.cpp repacks on AVX2), made once."""
    import llama_cpp

    target = default_cache_path().parent / "models" / "SmolLM2-135M-Instruct.Q4_0-from-Q4_1.gguf"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
    params.allow_requantize = True
    partial = target.with_suffix(".partial")
    code = llama_cpp.llama_model_quantize(str(embedded_gguf_path()).encode(), str(partial).encode(), params)
    if code != 0:
        raise RuntimeError(f"llama_model_quantize failed with code {code}")
    partial.rename(target)
    return target


def requests(count: int) -> list[list[dict[str, str]]]:
    seeds = load_seeds().seeds[:count]
    return [[{"role": "user", "content": f"Make this instruction more specific: {seed}"}] for seed in seeds]


def measure(model: Path, arms: list[bool], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Tokens/s of each arm over alternating rounds (one backend per arm, both warm)."""
    chats = requests(args.requests)
    params = GenerationParams(max_new_tokens=args.tokens)
    backends = {arm: LlamaCppBackend(model, max_batch=8, extra_buffers=arm) for arm in arms}
    texts: dict[bool, list[str]] = {}
    seconds: dict[bool, list[float]] = {arm: [] for arm in arms}
    tokens: dict[bool, int] = {}
    for backend in backends.values():  # warm-up: the preamble in the KV cache, pages touched
        backend.generate(chats[:2], params)
    for _ in range(args.rounds):
        for arm, backend in backends.items():
            with Timer() as timer:
                answers = backend.generate(chats, params)
            seconds[arm].append(timer.seconds)
            texts[arm] = [answer.text for answer in answers]
            tokens[arm] = sum(answer.completion_tokens for answer in answers)
    for backend in backends.values():
        backend.close()
    rows = []
    for arm in arms:
        median = statistics.median(seconds[arm])
        rows.append(
            {
                "model": model.name,
                "extra_buffers": arm,
                "seconds": seconds[arm],
                "tokens_per_s": tokens[arm] / median,
                "same_texts_as_other_arm": texts[arm] == texts[not arm] if len(arms) == 2 else None,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    arms = [False] if build_has_amx() else [True, False]
    rows = []
    for model in (embedded_gguf_path(), requantized_q4_0()):
        rows += measure(model, arms, args)
        print(f"measured {model.name}", flush=True)
    baseline = {row["model"]: row["tokens_per_s"] for row in rows if row["extra_buffers"] is False}
    table = markdown_table(
        ["model", "extra buffers", "tokens/s (median)", "vs plain buffers", "texts equal to other arm"],
        [
            [
                row["model"],
                "on" if row["extra_buffers"] else "off",
                f"{row['tokens_per_s']:.1f}",
                f"{row['tokens_per_s'] / baseline[row['model']]:.2f}x",
                "n/a" if row["same_texts_as_other_arm"] is None else str(row["same_texts_as_other_arm"]),
            ]
            for row in rows
        ],
    )
    cpu = build_features().get("CPU", {})
    note = (
        f"llama.cpp build: {' '.join(name for name, value in cpu.items() if value not in ('', '0'))}. "
        f"{args.requests} requests x {args.tokens} new tokens, batch 8, greedy, {args.rounds} alternating rounds."
        + (" AMX build: the 'on' arm is not run (it segfaults)." if build_has_amx() else "")
    )
    print(table + "\n\n" + note)
    write_result(
        "llamacpp_extra_buffers",
        {"rows": rows, "build_features": cpu, "requests": args.requests, "tokens": args.tokens},
        "# llama.cpp extra buffers: on vs off\n\n" + table + "\n\n" + note,
    )


if __name__ == "__main__":
    main()
