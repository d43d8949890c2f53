"""``teams-rl audit``: what a reward pays for in a transition pack (:mod:`agents.pack_audit`). It
only reads the pack: no LLM is loaded (the novelty rewards load the pack's sentence encoder)."""

from __future__ import annotations

from dataclasses import dataclass

from teams_env.configuration import option
from teams_env.replay import DEFAULT_PACK
from teams_env.rewards import REWARD_NAMES


@dataclass
class AuditConfig:
    pack: str = option(str(DEFAULT_PACK), "transition pack directory (also the positional argument)")
    out: str = option("audit", "directory to write audit.md and audit.json into")
    samples: int = option(5, "rewarded rewrites shown per action, drawn at random")
    seed: int = option(0, "seed of the random samples")
    reward: str = option("reviewer", f"the reward audited: {', '.join(REWARD_NAMES)}")

    def validate(self) -> None:
        if self.reward not in REWARD_NAMES:
            raise ValueError(f"unknown reward '{self.reward}'; choose {', '.join(REWARD_NAMES)}")
        if self.samples < 0:
            raise ValueError(f"samples must be at least 0, got {self.samples}")


def run(config: AuditConfig) -> int:
    from agents.pack_audit import audit_pack, write_audit
    from teams_env.pack import load_pack

    audit = audit_pack(load_pack(config.pack), reward=config.reward, samples=config.samples, seed=config.seed)
    out = write_audit(config.out, audit)
    junk = audit["junk"]["detectors"]
    flagged = ", ".join(f"{name} {row['rewarded']}" for name, row in junk.items())
    print(
        f"{out}: {audit['rewarded']} of {audit['nodes']} steps rewarded ({audit['reward']}); "
        f"rewarded steps flagged: {flagged}; best fixed {', '.join(audit['ceilings']['best_fixed'])}"
    )
    return 0
