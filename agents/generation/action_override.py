"""Overriding the policy at generation time, as the authors' generation script did (off by default):
``force_actions`` sets the action at given steps, ``replace_actions`` swaps actions at the others."""

from __future__ import annotations

from collections.abc import Sequence

from teams_env.actions import ACTION_NAMES
from teams_rl.agents.episodes import ActionOverride


def _action(name: str, where: str) -> int:
    if name not in ACTION_NAMES:
        raise ValueError(f"{where}: unknown action '{name}'; choose one of {', '.join(ACTION_NAMES)}")
    return ACTION_NAMES.index(name)


def _pair(text: str, where: str) -> tuple[str, str]:
    left, sep, right = text.partition(":")
    if not sep or not left.strip() or not right.strip():
        raise ValueError(f"{where}: expected A:B, got '{text}'")
    return left.strip(), right.strip()


def action_override(
    force_actions: Sequence[str], replace_actions: Sequence[str], max_steps: int
) -> ActionOverride | None:
    """An override from ``STEP:ACTION`` and ``FROM:TO`` pairs (None when both are empty)."""
    forced: dict[int, int] = {}
    for text in force_actions:
        step_text, name = _pair(text, "force_actions")
        if not step_text.isdigit() or not 1 <= int(step_text) <= max_steps:
            raise ValueError(f"force_actions: step must be 1..{max_steps}, got '{step_text}'")
        forced[int(step_text)] = _action(name, "force_actions")
    replaced = {
        _action(old, "replace_actions"): _action(new, "replace_actions")
        for old, new in (_pair(text, "replace_actions") for text in replace_actions)
    }
    if not forced and not replaced:
        return None

    def override(step: int, chosen: int) -> int:
        return forced[step] if step in forced else replaced.get(chosen, chosen)

    return override
