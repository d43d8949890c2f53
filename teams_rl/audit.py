"""``teams-rl audit``: what a reward pays for in a transition pack (:mod:`agents.pack_audit`). It
only reads the pack: no LLM is loaded (the novelty rewards load the pack's sentence encoder)."""

from __future__ import annotations

from dataclasses import dataclass

from agents.config import check_pack
from teams_env.configuration import option
from teams_env.rewards import REWARD_NAMES


@dataclass
class AuditConfig:
    pack: str = option(
        "default", "transition pack: a directory, or a shipped pack (default); also the positional argument"
    )
    out: str = option("audit", "directory to write audit.md and audit.json into (made if missing)")
    samples: int = option(5, "rewarded rewrites shown per action, drawn at random")
    seed: int = option(0, "seed of the random samples")
    reward: str = option("reviewer", f"the reward audited: {', '.join(REWARD_NAMES)}")

    def validate(self) -> None:
        if self.reward not in REWARD_NAMES:
            raise ValueError(f"--reward: unknown reward '{self.reward}'; choose {', '.join(REWARD_NAMES)}")
        if self.samples < 0:
            raise ValueError(f"--samples must be at least 0, got {self.samples}")
        check_pack(self.pack)


def run(config: AuditConfig) -> int:
    from agents.pack_audit import audit_pack, write_audit
    from teams_env.pack import load_pack

    audit = audit_pack(load_pack(config.pack), reward=config.reward, samples=config.samples, seed=config.seed)
    out = write_audit(config.out, audit)
    junk = audit["junk"]["detectors"]
    flagged = ", ".join(f"{name} {row['rewarded']}" for name, row in junk.items())
    ceiling = audit["ceilings"]
    print(
        f"{audit['rewarded']} of {audit['nodes']} steps rewarded ({audit['reward']}); rewarded steps "
        f"flagged: {flagged}; best fixed on the {ceiling['split']} seeds: {', '.join(ceiling['best_fixed'])}"
    )
    print(f"wrote audit.md and audit.json to {out.resolve()}")
    return 0
