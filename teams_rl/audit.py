"""``teams-rl audit``: what a reward pays for in a transition pack (:mod:`teams_rl.agents.benchmark.reward_audit`). It
only reads the pack: no LLM is loaded (the novelty rewards load the pack's sentence encoder)."""

from __future__ import annotations

from dataclasses import dataclass

from teams_env.options import option
from teams_env.replay.rewards import REWARD_NAMES
from teams_rl.agents.commands import check_pack


@dataclass
class AuditConfig:
    pack: str = option(
        "default", "transition pack: a directory, or a shipped pack (default); also the positional argument"
    )
    out: str = option("audit", "directory to write audit.md and audit.json into (made if missing)")
    samples: int = option(5, "rewarded rewrites shown per action, drawn at random")
    seed: int = option(0, "seed of the random samples")
    reward: str = option("reviewer", f"the reward audited: {', '.join(REWARD_NAMES)}")
    labels: list[str] = option(
        [],
        "readers' labels (reading-merge's labelled.jsonl files): the share of rewarded steps "
        "labelled GOOD per action, where labels exist for them",
    )

    def validate(self) -> None:
        if self.reward not in REWARD_NAMES:
            raise ValueError(f"--reward: unknown reward '{self.reward}'; choose {', '.join(REWARD_NAMES)}")
        if self.samples < 0:
            raise ValueError(f"--samples must be at least 0, got {self.samples}")
        check_pack(self.pack)


def read_triple_labels(paths: list[str]) -> dict[tuple[str, str, str], str]:
    """The label of each (instruction, action, rewrite) in readers' labelled files (the first file
    to label a triple decides)."""
    from teams_rl.reading import labelled_rows

    labels: dict[tuple[str, str, str], str] = {}
    for row in labelled_rows(paths):
        labels.setdefault((row["instruction"], row["action"], row["rewrite"]), row["label"])
    return labels


def run(config: AuditConfig) -> int:
    from teams_env.replay.pack import load_pack
    from teams_rl.agents.benchmark.reward_audit import audit_pack, write_audit

    audit = audit_pack(
        load_pack(config.pack),
        reward=config.reward,
        samples=config.samples,
        seed=config.seed,
        labels=read_triple_labels(config.labels),
    )
    out = write_audit(config.out, audit)
    junk = audit["junk"]["detectors"]
    flagged = ", ".join(f"{name} {row['rewarded']}" for name, row in junk.items())
    ceiling = audit["ceilings"]
    print(
        f"{audit['rewarded']} of {audit['nodes']} steps rewarded ({audit['reward']}); rewarded steps "
        f"flagged: {flagged}; best fixed on the {ceiling['split']} seeds: {', '.join(ceiling['best_fixed'])}"
    )
    reading = audit["reading"]
    if reading is not None:
        every = reading["all"]
        print(
            f"readers labelled {every['labelled']} distinct rewarded steps: {every['good']} GOOD"
            + ("" if every["good_share"] is None else f" ({every['good_share']:.0%})")
        )
    print(f"wrote audit.md and audit.json to {out.resolve()}")
    return 0
