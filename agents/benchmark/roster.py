"""The agents a bench compares, from ``--algos``, ``--variants`` and ``--agents``: checked and named
before anything runs (the live and the pack bench share them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from teams_rl.agents.baselines.registry import BASELINE_NAMES, is_baseline
from teams_rl.agents.commands import VARIANTS, BenchConfig
from teams_rl.agents.policy import import_agent_class
from teams_rl.agents.training.algorithms import ALGORITHMS, get_algorithm


@dataclass(frozen=True)
class BenchAgent:
    """One row of the comparison: an algorithm to train, or a policy to run as it is."""

    name: str
    algo: str = ""
    policy: str = ""
    action_type: str = "continuous"
    observation: str = "text"
    hyperparams: Mapping[str, Any] = field(default_factory=dict)

    @property
    def learns(self) -> bool:
        return bool(self.algo)


def _named_agent(name: str) -> BenchAgent:
    key = name.strip()
    if key.lower() in ALGORITHMS:
        algorithm = get_algorithm(key)
        return BenchAgent(
            algorithm.name, algo=algorithm.name, action_type=algorithm.resolve_action_type("auto")
        )
    if key == "fixed":
        key = "reference"  # the authors' forced sequence
    if is_baseline(key):
        return BenchAgent(key, policy=key)
    if ":" in key:
        import_agent_class(key)  # fail now, before any training, if the path is wrong
        return BenchAgent(key.rpartition(":")[2], policy=key)
    raise ValueError(
        f"unknown agent '{name}': use an algorithm ({', '.join(ALGORITHMS)}), a baseline (fixed, "
        f"{', '.join(BASELINE_NAMES)}; one whose name holds commas goes in --agents) or module:Class"
    )


def _listed_agent(entry: Mapping[str, Any], index: int) -> BenchAgent:
    where = f"agents[{index}]"
    if not isinstance(entry, Mapping) or "name" not in entry:
        raise ValueError(f"{where}: expected a mapping with a name, got {entry!r}")
    unknown = set(entry) - {"name", "algo", "policy", "action_type", "observation", "hyperparams"}
    if unknown:
        raise ValueError(f"{where}: unknown key '{sorted(unknown)[0]}'")
    if bool(entry.get("algo")) == bool(entry.get("policy")):
        raise ValueError(f"{where}: give exactly one of algo (to train) or policy (to run)")
    if entry.get("algo"):
        algorithm = get_algorithm(str(entry["algo"]))
        action_type = algorithm.resolve_action_type(str(entry.get("action_type", "auto")))
    else:
        policy = str(entry["policy"])
        if not is_baseline(policy):
            import_agent_class(policy)
        action_type = str(entry.get("action_type", "continuous"))
    return BenchAgent(
        name=str(entry["name"]),
        algo=str(entry.get("algo", "")),
        policy=str(entry.get("policy", "")),
        action_type=action_type,
        observation=str(entry.get("observation", "text")),
        hyperparams=dict(entry.get("hyperparams") or {}),
    )


def bench_agents(config: BenchConfig) -> list[BenchAgent]:
    """The agents of a bench config, checked before anything runs."""
    agents = [_named_agent(name) for name in config.algos]
    first_learner = next((a for a in agents if a.learns), None)
    for variant in config.variants:
        if first_learner is None:
            break
        if variant == "discrete":
            action_type = get_algorithm(first_learner.algo).resolve_action_type("discrete")
            agents.append(
                BenchAgent(f"{first_learner.name}/discrete", algo=first_learner.algo, action_type=action_type)
            )
        elif variant == "last_action":
            agents.append(
                BenchAgent(
                    f"{first_learner.name}/last_action", algo=first_learner.algo, observation="last_action"
                )
            )
        else:
            raise ValueError(f"--variants: unknown variant '{variant}'; choose from {', '.join(VARIANTS)}")
    agents += [_listed_agent(entry, index) for index, entry in enumerate(config.agents)]
    names = [agent.name for agent in agents]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"agent name '{duplicated[0]}' appears twice; give listed agents their own names")
    return agents
