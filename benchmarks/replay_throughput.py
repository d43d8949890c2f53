"""Replayed vs live environment speed, side by side in one run on one machine:

1. replay env steps/s, ``TeaMsInstructReplayDiscrete-v0`` and ``TeaMsInstructReplay-v0`` with text
   and last-action observations, random actions, resets included, from a transition pack;
2. the live env's steps/s on the same MDP (``TeaMsInstructDiscrete-v0`` with the pack's seeds,
   expert, reviewer, decoding, ``on_failure`` and depth; cache off): it loads the model;
3. the recording's rewrites/s (batched across seeds and nodes), from the pack's manifest.

    python -m benchmarks.replay_throughput [--pack DIR] [--steps 20000] [--live-steps 24] [--skip-live]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym

from benchmarks.common import Timer, markdown_table, write_result
from teams_env.replay.env import DEFAULT_PACK, pack_encoder_spec
from teams_env.replay.pack import shared_pack

REPLAY_ARMS = (
    ("TeaMsInstructReplayDiscrete-v0", "text"),
    ("TeaMsInstructReplayDiscrete-v0", "last_action"),
    ("TeaMsInstructReplay-v0", "text"),
    ("TeaMsInstructReplay-v0", "last_action"),
)
LIVE_ENV_ID = "TeaMsInstructDiscrete-v0"
REPLAY_TARGET_STEPS_PER_S = 5000.0


def run_steps(env: gym.Env, actions: Sequence[Any], seed: int) -> int:
    """Take ``actions`` from a reset, resetting at every episode end; returns the resets made."""
    env.reset(seed=seed)
    resets = 1
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
            resets += 1
    return resets


def timed_steps(env: gym.Env, steps: int, seed: int) -> dict[str, Any]:
    """Steps/s over ``steps`` random actions, drawn before the clock starts."""
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    with Timer() as timer:
        resets = run_steps(env, actions, seed)
    return {
        "steps": steps,
        "resets": resets,
        "seconds": timer.seconds,
        "steps_per_s": steps / timer.seconds,
    }


def replay_speed(pack: Path, env_id: str, observation: str, steps: int, seed: int) -> dict[str, Any]:
    env = gym.make(env_id, pack=pack, observation=observation)
    result = timed_steps(env, steps, seed)
    return {
        "env_id": env_id,
        "observation": observation,
        **result,
        "meets_target": result["steps_per_s"] >= REPLAY_TARGET_STEPS_PER_S,
    }


def live_kwargs(manifest: dict[str, Any], expert: str, reviewer: str | None) -> dict[str, Any]:
    """The live env of the recording: every setting of the manifest that changes the model calls."""
    decoding = manifest["decoding"]
    return {
        "expert": expert,
        "reviewer": reviewer,
        "encoder": pack_encoder_spec(manifest),
        "seeds": [seed["text"] for seed in manifest["seeds"]],
        "max_steps": int(manifest["depth"]),
        "on_failure": manifest["on_failure"],
        "leak_penalty": manifest["leak_penalty"],
        "review_method": manifest["review_method"],
        "reviewer_threshold": manifest["reviewer_threshold"],
        "reviewer_head": manifest["reviewer_head"],
        "max_new_tokens": decoding["max_new_tokens"],
        "temperature": decoding["temperature"],
        "sample_seed": decoding["seed"],
        "max_instruction_chars": manifest["max_instruction_chars"],
        "cache": None,
    }


def live_speed(
    manifest: dict[str, Any], expert: str, reviewer: str | None, steps: int, seed: int
) -> dict[str, Any]:
    env = gym.make(LIVE_ENV_ID, **live_kwargs(manifest, expert, reviewer))
    engine = env.unwrapped.engine
    models = {"expert": engine.expert.backend.identity, "reviewer": engine.reviewer.service.backend.identity}
    for role, identity in models.items():
        if identity != manifest[role]:  # another model: the comparison would not be like for like
            raise SystemExit(
                f"the live {role} is {identity}, the pack was recorded with {manifest[role]}; "
                f"pass --{role} with the spec it was recorded with"
            )
    # Warm-up on another seed: the model's first calls (and its cached prompt prefixes) go untimed.
    run_steps(env, [env.action_space.sample()], seed + 1)
    return {"env_id": LIVE_ENV_ID, "expert": expert, **models, **timed_steps(env, steps, seed)}


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def table(replay: list[dict[str, Any]], live: dict[str, Any] | None, recording: dict[str, Any]) -> str:
    live_rate = live["steps_per_s"] if live else None

    def versus_live(rate: float | None) -> str:
        return f"{rate / live_rate:.0f}x" if rate and live_rate else "n/a"

    rows = [
        [
            f"replay {arm['env_id']}, {arm['observation']} obs",
            _rate(arm["steps_per_s"]),
            versus_live(arm["steps_per_s"]),
        ]
        for arm in replay
    ]
    if live:
        rows.append([f"live {live['env_id']} ({live['expert']}, cache off)", _rate(live_rate), "1x"])
    rate = recording.get("requests_per_second")
    rows.append(
        [
            f"recording, rewrites/s (batches of {recording.get('batch_size')})",
            _rate(rate),
            versus_live(rate),
        ]
    )
    return markdown_table(["measure", "steps/s", "vs live"], rows)


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pack", type=Path, default=DEFAULT_PACK, help="transition pack directory")
    parser.add_argument("--steps", type=int, default=20_000, help="replay steps per arm")
    parser.add_argument("--live-steps", type=int, default=24, help="live env steps (each runs the model)")
    parser.add_argument("--skip-live", action="store_true", help="measure replay only (no model loaded)")
    parser.add_argument(
        "--expert",
        default=None,
        help="the spec the pack's expert was recorded with (default: the shipped expert it names)",
    )
    parser.add_argument("--reviewer", default=None, help="the reviewer's spec, when not the expert's")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random actions and resets")
    args = parser.parse_args(argv)

    pack = shared_pack(args.pack)
    expert = args.expert or pack.expert_spec
    if expert is None and not args.skip_live:
        raise SystemExit(f"{args.pack}: recorded with an expert that is not a shipped one; pass --expert")
    replay = [replay_speed(args.pack, env_id, obs, args.steps, args.seed) for env_id, obs in REPLAY_ARMS]
    live = (
        None
        if args.skip_live
        else live_speed(pack.manifest, expert, args.reviewer, args.live_steps, args.seed)
    )
    if live:
        for arm in replay:
            arm["ratio_to_live"] = arm["steps_per_s"] / live["steps_per_s"]
    recording = dict(pack.manifest["recording"])

    text = table(replay, live, recording)
    print(text)
    markdown = (
        f"# Replay vs live environment throughput\n\n{text}\n\n"
        f"Pack {pack.directory.name}: {pack.manifest['counts']['nodes']} nodes, "
        f"{len(pack.seeds)} seeds, depth {pack.depth}. Replay target: "
        f"{REPLAY_TARGET_STEPS_PER_S:,.0f} steps/s. One run on one machine (the recording's rate is "
        "from its manifest, on the machine named there); see replay_throughput.json.\n"
    )
    path = write_result(
        "replay_throughput",
        {
            "pack": str(pack.directory),
            "pack_nodes": pack.manifest["counts"]["nodes"],
            "pack_depth": pack.depth,
            "replay_target_steps_per_s": REPLAY_TARGET_STEPS_PER_S,
            "replay": replay,
            "live": live,
            "recording": recording,
            "recording_machine": pack.manifest.get("machine"),
        },
        markdown,
    )
    print(f"\nwritten: {path}")
    return path


if __name__ == "__main__":
    main()
