"""Where a pack recording's time goes, next to what llama.cpp reaches on this machine.

Records a small pack (``--seeds`` seed instructions not in the default pack, to ``--depth``) into a
temporary directory with an empty LLM cache, so every rewrite and verdict is computed, and splits
the time into the recorder's stages (expert rewrites, reviewer verdicts, observation embeddings,
the env's bookkeeping) and, inside llama.cpp calls, into prompt prefill, answer decoding and token
choice (Python). Then it measures llama.cpp's own rates for the same model in this process: a
prompt prefilled in one call and in the backend's 32-token blocks, and one decoding step for 1
and for ``--max-batch`` sequences (what ``llama-bench`` calls pp and tg).

    python -m benchmarks.recording_profile [--seeds 2] [--depth 3] [--max-batch 16] \
        [--arms 96:arrival,96:longest,384:longest]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks.common import markdown_table, write_result

SEEDS_FILE = Path(__file__).resolve().parent / "grown_pack_seeds.jsonl"
DEFAULT_SEEDS_FILE = Path(__file__).resolve().parent / "default_pack_seeds.jsonl"


EXPERT, REVIEWER = "expert rewrites", "reviewer verdicts"
ROLES = (EXPERT, REVIEWER)
PREFILL = "llama.cpp prompt prefill"
DECODE = "llama.cpp answer decoding"


class Clock:
    """Seconds and counts per named stage; nested stages are charged to the innermost one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.tokens: dict[str, int] = defaultdict(int)
        self._stack: list[list[Any]] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        frame = [name, time.perf_counter(), 0.0]  # name, start, seconds spent in nested stages
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            total = time.perf_counter() - frame[1]
            self.seconds[name] += total - frame[2]
            if self._stack:
                self._stack[-1][2] += total

    def wrap(self, owner: Any, attribute: str, name: str, count: Callable[..., int] | None = None) -> Any:
        """Patch ``owner.attribute`` to run as stage ``name``, prefixed by the enclosing role
        (expert or reviewer) for llama.cpp stages; ``count``: tokens it handles, from its arguments."""
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            label = name
            if name.startswith("llama.cpp"):
                roles = [frame[0] for frame in self._stack if frame[0] in ROLES]
                inside_prefill = any(frame[0].endswith(PREFILL) for frame in self._stack)
                label = f"{roles[-1] if roles else 'other'}: {PREFILL if inside_prefill else name}"
            if count is not None:
                self.tokens[label] += count(*args, **kwargs)
            with self.stage(label):
                return original(*args, **kwargs)

        return mock.patch.object(owner, attribute, timed)


def profile_recording(args: argparse.Namespace, workdir: Path, batch_size: int, order: str) -> dict[str, Any]:
    """Record the profile's pack with recorder batches of ``batch_size`` and the expert admitting
    requests in ``order`` ("longest", the backend's, or "arrival", as before it), timing each stage."""
    from teams_env.encoder import SentenceEncoder
    from teams_env.engine import RewriteEngine
    from teams_env.llm import llamacpp
    from teams_env.replay.recording import record
    from teams_env.reward.reviewer import Reviewer

    known = {json.loads(line)["instruction"] for line in DEFAULT_SEEDS_FILE.read_text().splitlines() if line}
    fresh = [
        line
        for line in SEEDS_FILE.read_text().splitlines()
        if line and json.loads(line)["instruction"] not in known
    ]
    # One seed from each of the first domains, so the prompts are not all alike.
    by_domain: dict[str, str] = {}
    for line in fresh:
        by_domain.setdefault(json.loads(line)["domain"], line)
    chosen = list(by_domain.values())[: args.seeds]
    seeds = workdir / "seeds.jsonl"
    seeds.write_text("\n".join(chosen) + "\n", encoding="utf-8")

    clock = Clock()
    backend = llamacpp.LlamaCppBackend
    with ExitStack() as patches:
        if order == "arrival":
            patches.enter_context(
                mock.patch.object(
                    backend, "_admission_order", staticmethod(lambda every: list(range(len(every))))
                )
            )
        for owner, attribute, name, count in [
            (RewriteEngine, "rewrite", EXPERT, None),
            (Reviewer, "judge", REVIEWER, None),
            (SentenceEncoder, "encode", "MiniLM embeddings", None),
            (backend, "_prefill", PREFILL, None),
            (backend, "_decode", DECODE, lambda self, entries, *a, **k: len(entries)),
            (llamacpp, "choose_token", "llama.cpp token choice (Python)", None),
        ]:
            patches.enter_context(clock.wrap(owner, attribute, name, count))
        start = time.perf_counter()
        with clock.stage("recorder bookkeeping"):
            record(
                workdir / f"pack-{batch_size}-{order}",
                depth=args.depth,
                batch_size=batch_size,
                seeds=str(seeds),
                expert=f"llamacpp?max_batch={args.max_batch}",
                on_failure="revert",
                progress=False,
            )
        wall = time.perf_counter() - start
    manifest = json.loads((workdir / f"pack-{batch_size}-{order}" / "manifest.json").read_text())
    return {
        "seeds": len(chosen),
        "depth": args.depth,
        "max_batch": args.max_batch,
        "batch_size": batch_size,
        "admission": order,
        "pack": f"pack-{batch_size}-{order}",
        "wall_seconds": wall,
        "rewrites": manifest["recording"]["requests"],
        "rewrites_per_second": manifest["recording"]["requests"] / wall,
        "stage_seconds": dict(clock.seconds),
        "stage_tokens": dict(clock.tokens),
    }


def llama_rates(widths: tuple[int, ...], context: int = 640, repeats: int = 3) -> dict[str, float]:
    """Tokens/s of bare ``llama_decode`` calls for the embedded model (no sampling, no Python loop)."""
    from teams_env.llm.embedded import embedded_gguf_path
    from teams_env.llm.llamacpp import BLOCK, LlamaCppBackend, _Entry

    backend = LlamaCppBackend(embedded_gguf_path(), max_batch=max(widths))
    tokens = [(17 * i) % 2000 + 100 for i in range(context)]

    def prefill(block: int) -> float:
        best = float("inf")
        for _ in range(repeats):
            backend._truncate(backend._slots[0], 0)
            start = time.perf_counter()
            for first in range(0, context, block):
                positions = range(first, min(first + block, context))
                backend._decode([_Entry(tokens[p], 0, p, p == context - 1) for p in positions])
            best = min(best, time.perf_counter() - start)
        return context / best

    def decode(width: int, steps: int = 16) -> float:
        best = float("inf")
        for _ in range(repeats):
            backend._truncate(backend._slots[0], 0)
            backend._decode([_Entry(tokens[p], 0, p, p == context - 1) for p in range(context)])
            backend._slots[0].tokens = list(tokens)
            for slot in backend._slots[1:width]:  # the same prompt in every sequence, copied
                backend._copy_prefix(backend._slots[0], slot, context)
            start = time.perf_counter()
            for step in range(steps):
                backend._decode([_Entry(tokens[step], seq, context + step, True) for seq in range(width)])
            best = min(best, time.perf_counter() - start)
            for seq in range(width):
                backend._llama_cpp.llama_memory_seq_rm(backend._ctx.memory, seq, context, -1)
        return width * steps / best

    rates = {
        f"prefill, one call of up to 512 tokens ({context}-token prompt)": prefill(512),
        f"prefill, {BLOCK}-token blocks (the deterministic backend)": prefill(BLOCK),
        **{f"decode, {width} sequence{'s' if width > 1 else ''}": decode(width) for width in widths},
    }
    backend.close()
    return rates


RESULT_MARK = "PROFILE "


def run_arm(args: argparse.Namespace, workdir: Path, batch_size: int, order: str) -> dict[str, Any]:
    """One recording in a fresh process with an empty cache: no arm inherits another's loaded
    models, warm KV cache or remembered embeddings."""
    from teams_env.llm.cache import CACHE_ENV_VAR

    command = [
        sys.executable, "-m", "benchmarks.recording_profile", "--one-arm", f"{batch_size}:{order}",
        "--workdir", str(workdir), "--seeds", str(args.seeds), "--depth", str(args.depth),
        "--max-batch", str(args.max_batch),
    ]  # fmt: skip
    environment = {**os.environ, CACHE_ENV_VAR: str(workdir / f"cache-{batch_size}-{order}.sqlite")}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the {batch_size}:{order} recording failed: {done.stderr[-2000:]}")
    return json.loads(lines[-1][len(RESULT_MARK) :])


def pack_differences(first: Path, other: Path) -> dict[str, int]:
    """Nodes of ``other`` whose rewrite, reward or recorded probabilities differ from ``first``'s."""
    from teams_env.replay.pack import load_pack

    a, b = load_pack(first).nodes, load_pack(other).nodes
    return {
        "nodes": len(b),
        "rewrite": sum(a[key].instruction != node.instruction for key, node in b.items()),
        "reward": sum(a[key].reward != node.reward for key, node in b.items()),
        "other info": sum(a[key].info != node.info for key, node in b.items()),
    }


def stage_table(recording: dict[str, Any]) -> str:
    wall = recording["wall_seconds"]
    tokens = recording["stage_tokens"]
    return markdown_table(
        ["stage", "seconds", "share", "tokens/s"],
        [
            [name, f"{s:.1f}", f"{s / wall:.0%}", f"{tokens[name] / s:.0f}" if tokens.get(name) else ""]
            for name, s in sorted(recording["stage_seconds"].items(), key=lambda item: -item[1])
        ],
    )


def parse_arm(text: str) -> tuple[int, str]:
    size, _, order = text.partition(":")
    if not size.isdigit() or order not in ("arrival", "longest"):
        raise argparse.ArgumentTypeError(f"an arm is BATCH_SIZE:arrival or BATCH_SIZE:longest, got {text!r}")
    return int(size), order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="seed instructions to record")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--max-batch", type=int, default=16, help="the expert's llamacpp max_batch")
    parser.add_argument(
        "--arms",
        type=lambda text: [parse_arm(arm) for arm in text.split(",")],
        default=[(96, "arrival"), (96, "longest"), (384, "longest")],
        help="recordings to compare, each BATCH_SIZE:ORDER (the recorder's batch size; the expert admits "
        "requests in arrival order, as before, or longest first); default 96:arrival,96:longest,384:longest",
    )
    parser.add_argument(
        "--name", default="recording_profile", help="result file name under benchmarks/results"
    )
    parser.add_argument("--one-arm", type=parse_arm, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_arm is not None:  # a child process: one recording, its profile to stdout
        batch_size, order = args.one_arm
        print(RESULT_MARK + json.dumps(profile_recording(args, Path(args.workdir), batch_size, order)))
        return
    recordings = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch_size, order in args.arms:
            recordings.append(run_arm(args, Path(tmp), batch_size, order))
            print(f"recorded with batch {batch_size}, {order} first", flush=True)
        differences = [
            pack_differences(Path(tmp) / recordings[0]["pack"], Path(tmp) / r["pack"]) for r in recordings
        ]
    rates = llama_rates(tuple(sorted({1, 16, args.max_batch, 32, 64})))
    text = report(recordings, differences, rates)
    print(text)
    write_result(
        args.name,
        {"recordings": recordings, "differences": differences, "llama_cpp_tokens_per_second": rates},
        f"# Recording profile\n\n{text}\n",
    )


def report(
    recordings: list[dict[str, Any]], differences: list[dict[str, int]], rates: dict[str, float]
) -> str:
    """The Markdown report: the arms side by side, where each one's time went, llama.cpp's own rates."""
    first = recordings[0]
    comparison = markdown_table(
        [
            "recorder batch",
            "expert admits",
            "seconds",
            "pack nodes/s",
            "speed-up",
            "distinct requests sent",
            "nodes with another rewrite / reward / probabilities",
        ],
        [
            [
                r["batch_size"],
                "longest first" if r["admission"] == "longest" else "in arrival order",
                f"{r['wall_seconds']:.1f}",
                f"{d['nodes'] / r['wall_seconds']:.2f}",
                f"{first['wall_seconds'] / r['wall_seconds']:.2f}x",
                r["rewrites"],
                f"{d['rewrite']} / {d['reward']} / {d['other info']} of {d['nodes']}",
            ]
            for r, d in zip(recordings, differences)
        ],
    )
    reference = markdown_table(
        ["llama.cpp alone, same model", "tokens/s"], [[k, f"{v:.0f}"] for k, v in rates.items()]
    )
    summary = (
        f"The same pack ({first['seeds']} seed instructions, depth {first['depth']}, expert llamacpp max_batch "
        f"{first['max_batch']}) recorded once per arm, each in a fresh process with an empty cache (model "
        "loading included). A recorder batch sends each distinct request once, so larger batches send fewer; "
        "the speed-up compares the time to record the same nodes."
    )
    stages = "\n\n".join(
        f"### Batch {r['batch_size']}, {r['admission']} first: where the time goes\n\n{stage_table(r)}"
        for r in recordings
    )
    return f"{summary}\n\n{comparison}\n\n{stages}\n\n{reference}"


if __name__ == "__main__":
    main()
