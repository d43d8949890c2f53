"""``teams-rl record``: record a transition pack (:func:`teams_env.replay.recording.record`) from the
command line and print what it holds."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from teams_env.env_config import ENV_DEFAULTS, EnvConfig
from teams_env.options import option
from teams_env.replay.pack import read_manifest
from teams_env.replay.recording import record

IGNORED_ENV_OPTIONS = {
    "action_dim": "a pack holds the discrete actions; the replay env picks its action space",
    "observation": "the replay env picks its observation",
    "max_steps": "use --depth (the replay env's max_steps is at most the pack's depth)",
}
"""Env options that shape the agent's view, not the MDP's transitions: a pack serves every value."""

RECORD = inspect.signature(record).parameters
"""``record()``'s keyword defaults: the flags take theirs from it (one place)."""


@dataclass
class RecordConfig(EnvConfig):
    depth: int = option(3, "record every action sequence up to this many rewrites")
    out: str = option("", "pack directory to write (and to resume into)")
    batch_size: int = option(
        RECORD["batch_size"].default, "rewrites per batched model call (and per journal entry)"
    )
    heldout: float = option(RECORD["heldout"].default, "share of the seeds set aside as held-out seeds")
    split_seed: int = option(RECORD["split_seed"].default, "seed of the train / held-out split")

    def validate(self) -> None:
        super().validate()
        for name, instead in IGNORED_ENV_OPTIONS.items():
            if getattr(self, name) != getattr(ENV_DEFAULTS, name):
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} does not apply to a recording: {instead}")
        if not self.out:
            raise ValueError("--out PACK is required: the directory the pack is written to")
        if self.depth < 1:
            raise ValueError(f"depth must be at least 1, got {self.depth}")


def run(config: RecordConfig) -> int:
    kwargs = config.env_kwargs()
    for ignored in IGNORED_ENV_OPTIONS:
        kwargs.pop(ignored)
    path = record(
        config.out,
        depth=config.depth,
        batch_size=config.batch_size,
        heldout=config.heldout,
        split_seed=config.split_seed,
        **kwargs,
    )
    manifest = read_manifest(path)
    recording = manifest["recording"]
    print(
        f"{path}: {manifest['counts']['nodes']} nodes, {len(manifest['seeds'])} seeds, depth "
        f"{manifest['depth']}; {recording['requests']} rewrites in {recording['seconds']:.1f} s"
    )
    return 0
