"""``teams-rl bench --pack PACK``: RL algorithms on a recorded MDP, against its exact ceilings.

The replay env (:mod:`teams_env.replay.env`) serves a pack recorded by ``teams-rl record`` at thousands
of steps a second, so every algorithm can train for tens of thousands of steps on many seeds. Each
learning agent trains on the pack's ``train`` seeds; every agent is then evaluated, one episode per
seed with its most likely action (the env is deterministic, so that return is exact), on the
``train`` seeds and on the ``heldout`` seeds it never saw.

Ceilings and floor, per split and per seed, from dynamic programming over the pack
(:mod:`teams_env.replay.optimum`): ``optimal`` (the best return of each seed), the uniform policy's exact
expected return, and the best fixed action sequence. An agent's normalized score is
``(R - uniform) / (optimal - uniform)``: 0 is Evol-Instruct's uniform sampling, 1 the optimum.
``best-fixed`` is chosen on the training seeds (the text-blind ceiling a learner could reach from
them) and applied to both splits; ``supervised`` and ``nearest-seed`` (:mod:`teams_rl.agents.baselines.text`)
learn the training seeds' optimal actions from the text, without RL.

The headline statistics follow rliable (:mod:`teams_rl.agents.benchmark.statistics`): per split, the interquartile
mean of the per-seed normalized scores (runs = an agent's training seeds, tasks = the evaluation
seeds) with a stratified bootstrap 95% interval, and the probability that a run improves on
uniform and on best-fixed. Beside them, what the evaluation episodes are worth as a dataset per
expert query they cost: distinct kept rewrites (paid for, no leak, no near-duplicate) and
their Vendi score, each divided by the expert queries (equal for every agent: one episode of the
pack's depth per seed).

Writes ``benchmark.md``, ``results.json``, ``curves.png`` (training returns, normalized, mean and
95% band over seeds), ``scores.png``, and per split a performance profile (``profile_SPLIT.png``)
and the IQM intervals (``iqm_SPLIT.png``); each finished run is journaled in ``runs.jsonl``, so the
same command resumes and more seeds or agents reuse the runs already done (a run journaled before
per-seed results existed is run again; everything else is recomputed from the journal);
``runs.jsonl.gz`` holds this result's runs alone (the journal may hold others).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import itertools
import json
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from teams_env.actions import ACTION_NAMES
from teams_env.reward.elimination import leaked_phrase
from teams_env.reward.formula import rewarded_in
from teams_rl.agents.baselines.simple import REFERENCE_SEQUENCE
from teams_rl.agents.benchmark.pack_report import plot, write_report
from teams_rl.agents.benchmark.pack_summary import (
    CURVE_POINTS,
    POLICIES,
    RESULT_FIELDS,
    SPLITS,
    TEXT_BASELINES,
    headline,
    summarize,
)
from teams_rl.agents.benchmark.reward_audit import audit_pack, write_audit
from teams_rl.agents.commands import BenchConfig
from teams_rl.agents.episodes import play_episodes, policy_actor
from teams_rl.agents.journal import Journal

KEPT_MEASURE = "paid"
"""What a run's kept rewrites are (:func:`_kept`), part of every run's key: results journaled when
kept meant Not Equal and valid (before the GOOD head) are run again."""
RETRY_AWARE = "retry-aware"
"""The priority-order baselines that skip what failed, ``retry-aware`` and ``retry-aware:NAME,...``
(they need the verdict observation)."""


@dataclasses.dataclass(frozen=True)
class PackRun:
    """One (agent, seed) of the benchmark and everything that decides its result."""

    agent: str
    seed: int
    pack: str
    pack_hash: str
    budget: int
    n_envs: int
    reward: str
    algo: str = ""
    """The SB3 algorithm to train; empty for a policy that is run as it is."""
    action_type: str = "discrete"
    observation: str = "text"
    hyperparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    observe_verdicts: bool = False
    """The verdict observation (each past step's verdict and the instruction's length)."""
    policy: str = ""
    """The baseline's spec where it differs from the agent's name (``--agents``: a name, a policy)."""

    @property
    def key(self) -> str:
        identity = dataclasses.asdict(self) | {"pack": ""}  # the content hash names the pack, not its path
        identity["kept"] = KEPT_MEASURE  # a journaled result holds its kept rewrites
        for added, default in (("observe_verdicts", False), ("policy", "")):
            if identity[added] == default:  # keys as journaled before the field existed
                del identity[added]
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _env(run: PackRun, split: str, seed: int = 0) -> Any:
    import gymnasium as gym

    from teams_env import env_id

    env = gym.make(
        env_id(run.action_type, observe_verdicts=run.observe_verdicts, replay=True),
        pack=run.pack,
        seeds=split,
        observation=run.observation,
        observe_verdicts=run.observe_verdicts,
        reward=run.reward,
    )
    env.reset(seed=seed)
    return env


def _train(run: PackRun) -> tuple[Any, list[tuple[int, float]]]:
    """The trained SB3 model and its training episodes as (timestep, return)."""
    import torch
    from stable_baselines3.common.env_util import make_vec_env

    from teams_rl.agents.training.algorithms import get_algorithm
    from teams_rl.agents.training.hyperparameters import load_hyperparams, model_arguments

    torch.set_num_threads(1)  # a 64-unit policy runs fastest on one thread; runs go in parallel
    algorithm = get_algorithm(run.algo)
    policy, arguments = model_arguments(load_hyperparams(algorithm, "", run.hyperparams))
    vec_env = make_vec_env(lambda: _env(run, "train"), n_envs=run.n_envs, seed=run.seed)
    model = algorithm.load_class()(policy, vec_env, seed=run.seed, verbose=0, device="cpu", **arguments)
    episodes: list[tuple[int, float]] = []
    returns = np.zeros(run.n_envs)

    from stable_baselines3.common.callbacks import BaseCallback

    class EpisodeReturns(BaseCallback):
        def _on_step(self) -> bool:
            returns[:] += self.locals["rewards"]
            for index, done in enumerate(self.locals["dones"]):
                if done:
                    episodes.append((self.num_timesteps, float(returns[index])))
                    returns[index] = 0.0
            return True

    model.learn(total_timesteps=run.budget, callback=EpisodeReturns())
    return model, episodes


def _curve(episodes: list[tuple[int, float]], budget: int) -> list[float]:
    """Mean training return in each of ``CURVE_POINTS`` equal slices of the budget (NaN if empty)."""
    edges = np.linspace(0, budget, CURVE_POINTS + 1)
    steps = np.array([step for step, _ in episodes], dtype=float)
    values = np.array([value for _, value in episodes], dtype=float)
    curve = []
    for low, high in itertools.pairwise(edges):
        inside = values[(steps > low) & (steps <= high)]
        curve.append(float(inside.mean()) if len(inside) else float("nan"))
    return curve


def _kept(episodes: list[dict[str, Any]]) -> list[str]:
    """The rewrites a dataset would keep: those the env paid for (Not Equal, valid and, where the
    judge has a GOOD head, GOOD: :func:`~teams_env.reward.formula.rewarded_in`), without leaked
    prompt words."""
    return [
        info["instruction"]
        for episode in episodes
        for info in episode["infos"]
        if rewarded_in(info) and not leaked_phrase(info["instruction"])
    ]


def _actor(run: PackRun, env: Any, model: Any, best_fixed: Sequence[int]) -> Any:
    """``act(observation, step)`` for the run's agent on ``env``."""
    from teams_rl.agents.baselines.oracles import env_optimum

    if model is not None:
        return policy_actor(model)
    policy = run.policy or run.agent
    if policy == "uniform":  # one sampled episode per seed; the exact expectation is the floor
        rng = np.random.default_rng(run.seed)
        return lambda observation, step: int(rng.integers(len(ACTION_NAMES)))
    if policy == "reference":
        sequence = [ACTION_NAMES.index(name) for name in REFERENCE_SEQUENCE]
        return lambda observation, step: sequence[step % len(sequence)]
    if policy == "best-fixed":
        return lambda observation, step: best_fixed[step]
    if policy in TEXT_BASELINES or policy.startswith(RETRY_AWARE):  # they read the observation
        from teams_rl.agents.baselines.registry import make_baseline

        agent = make_baseline(policy, env, run.seed)
        assert agent is not None
        return policy_actor(agent)
    if policy != "optimal":
        raise ValueError(f"agent '{run.agent}': no pack policy '{policy}'")
    optimum = env_optimum(env.unwrapped)
    return lambda observation, step: optimum.best_action[env.unwrapped.node_key]


def _per_seed(episodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each evaluation episode's seed, return, expert queries (what the live steps cost, from the
    pack nodes' ``queries``) and kept rewrites (see ``_kept``), in the split's seed order."""
    return [
        {
            "seed_id": episode["seed_id"],
            "return": episode["return"],
            "expert_queries": int(episode["infos"][-1]["queries"].get("expert", 0))
            if episode["infos"]
            else 0,
            "kept": _kept([episode]),
        }
        for episode in episodes
    ]


def run_one(run: PackRun) -> dict[str, Any]:
    """Train (if the agent learns) and evaluate one run on both splits."""
    from teams_rl.agents.baselines.oracles import env_optimum

    start = time.perf_counter()
    model, training = _train(run) if run.algo else (None, [])
    # Only the best-fixed agent needs the train split solved (costly with a novelty reward).
    best_fixed = (
        env_optimum(_env(run, "train").unwrapped).best_fixed
        if (run.policy or run.agent) == "best-fixed"
        else ()
    )
    curve = _curve(training, run.budget) if run.algo else []
    result: dict[str, Any] = {"agent": run.agent, "seed": run.seed, "curve": curve}
    for split in SPLITS:
        env = _env(run, split, seed=run.seed)
        episodes = play_episodes(env, _actor(run, env, model, best_fixed))
        returns = [episode["return"] for episode in episodes]
        actions = [info["action"] for episode in episodes for info in episode["infos"]]
        result[split] = {
            "return": float(np.mean(returns)),
            "kept": _kept(episodes),
            "action_frequencies": np.bincount(actions, minlength=len(ACTION_NAMES)).tolist(),
            "seeds": _per_seed(episodes),
        }
    result["wall_seconds"] = time.perf_counter() - start
    return result


def ceilings(pack: str, reward: str) -> dict[str, dict[str, Any]]:
    """Per split: optimal, uniform-expected and best-fixed returns (best-fixed chosen on train), as
    means over the split's seeds and per seed (``per_seed``)."""
    from teams_env.replay.optimum import sequence_returns, uniform_returns
    from teams_rl.agents.baselines.oracles import env_optimum

    probe = PackRun("optimal", 0, pack, "", 1, 1, reward, observation="last_action")  # no embeddings needed
    chosen = env_optimum(_env(probe, "train").unwrapped).best_fixed
    table: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        env = _env(probe, split).unwrapped
        optimum = env_optimum(env)
        fixed = list(sequence_returns(env.transition_reward, env.seed_ids, chosen).values())
        uniform = uniform_returns(env.transition_reward, env.seed_ids, len(ACTION_NAMES), env.max_steps)
        table[split] = {
            "seeds": len(env.seed_ids),
            "optimal": optimum.mean_value,
            "uniform": float(np.mean(list(uniform.values()))),
            "best_fixed": float(np.mean(fixed)),
            "best_fixed_sequence": [ACTION_NAMES[a] for a in chosen],
            "best_fixed_oracle": optimum.best_fixed_return,
            "per_seed": {
                seed_id: {
                    "optimal": optimum.seed_value(seed_id),
                    "uniform": uniform[seed_id],
                    "best_fixed": float(value),
                }
                for seed_id, value in zip(env.seed_ids, fixed)
            },
        }
    return table


def plan(config: BenchConfig, pack_hash: str) -> list[PackRun]:
    """Every (agent, seed) run of a pack bench; agents the replay env cannot serve are an error."""
    from teams_rl.agents.benchmark.roster import bench_agents

    runs = []
    for agent in bench_agents(config):
        if agent.policy.startswith(RETRY_AWARE) and not config.observe_verdicts:
            raise ValueError(f"agent '{agent.name}' reads each step's verdict: add --observe-verdicts")
        if not agent.learns and agent.policy not in POLICIES and not agent.policy.startswith(RETRY_AWARE):
            raise ValueError(
                f"agent '{agent.name}': a pack bench runs SB3 algorithms and {', '.join(POLICIES)} "
                "(fixed is reference); run custom agents with gym.make('TeaMsInstructReplay-v0')"
            )
        for seed in config.run_seeds:
            runs.append(
                PackRun(
                    agent=agent.name,
                    seed=seed,
                    pack=config.pack,
                    pack_hash=pack_hash,
                    budget=config.budget,
                    n_envs=config.n_envs,
                    reward=config.reward,
                    algo=agent.algo,
                    action_type=agent.action_type if agent.learns else "discrete",
                    observation=agent.observation,
                    observe_verdicts=config.observe_verdicts,
                    policy="" if agent.learns or agent.policy == agent.name else agent.policy,
                    hyperparams=dict(agent.hyperparams),
                )
            )
    return runs


def headline_agent(runs: Sequence[PackRun]) -> str:
    """The agent the headline is about: the first learner of the bench, else its first text
    baseline, else ``trpo`` (whose absence the headline then states)."""
    learners = [run.agent for run in runs if run.algo]
    texts = [run.agent for run in runs if run.agent in TEXT_BASELINES]
    return (learners or texts or ["trpo"])[0]


def _complete(result: Mapping[str, Any]) -> bool:
    """Whether a journaled result has every field the summary needs (``RESULT_FIELDS``)."""
    return all(field in result.get(split, {}) for split in SPLITS for field in RESULT_FIELDS)


def compact_run(result: Mapping[str, Any]) -> dict[str, Any]:
    """A run's result without its per-seed episodes and with the number of rewrites it kept, not
    their texts (both stay in ``runs.jsonl``, the journal): what ``results.json`` keeps, small
    enough to commit beside a report."""

    def split(values: Mapping[str, Any]) -> dict[str, Any]:
        return {
            name: len(item) if name == "kept" else item for name, item in values.items() if name != "seeds"
        }

    return {key: split(value) if key in SPLITS else value for key, value in result.items()}


def bench_pack(config: BenchConfig) -> Path:
    """Run the pack benchmark of ``config`` (``config.pack`` set); returns the output directory."""
    from datetime import datetime, timezone

    from teams_env.replay.pack import shared_pack
    from teams_env.system_info import machine

    pack = shared_pack(config.pack)
    pack_hash = str(pack.manifest.get("content_sha256", ""))
    runs_to_do = plan(config, pack_hash)
    agents = list(dict.fromkeys(run.agent for run in runs_to_do))
    out = Path(config.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    journal = Journal(out / "runs.jsonl")
    finished = {record["key"]: record["result"] for record in journal.records if _complete(record["result"])}
    stale = {record["key"] for record in journal.records} - set(finished)
    todo = [run for run in runs_to_do if run.key not in finished]
    redo = sum(1 for run in todo if run.key in stale)
    print(
        f"bench --pack: {len(runs_to_do)} runs, {len(runs_to_do) - len(todo)} done earlier"
        + (f", {redo} journaled without per-seed results run again" if redo else ""),
        flush=True,
    )
    with ProcessPoolExecutor(max_workers=config.jobs) as pool:
        # Journaled as each run finishes, so an interrupted bench loses only the runs in flight.
        if config.jobs > 1:
            futures = {pool.submit(run_one, run): run for run in todo}
            done = ((futures[future], future.result()) for future in as_completed(futures))
        else:
            done = ((run, run_one(run)) for run in todo)
        for number, (run, result) in enumerate(done, start=1):
            journal.append({"key": run.key, "result": result})
            finished[run.key] = result
            print(
                f"[{number}/{len(todo)}] {run.agent} seed {run.seed}: return train {result['train']['return']:.2f}, "
                f"held-out {result['heldout']['return']:.2f} ({result['wall_seconds']:.0f} s)",
                flush=True,
            )
    runs = [finished[run.key] for run in runs_to_do]
    # The journal keeps every run ever journaled into this folder; the compressed copy holds this
    # result's runs alone, with their kept texts: small enough to commit beside results.json.
    with gzip.open(out / "runs.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(
            json.dumps({"key": run.key, "result": result}) + "\n" for run, result in zip(runs_to_do, runs)
        )
    table = ceilings(config.pack, config.reward)
    encoder = _env(runs_to_do[0], "train").unwrapped.encoder
    summary = summarize(runs, agents, table, encoder)
    results = {
        "command": "teams-rl " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if sys.argv[1:]
        else "bench_pack()",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": dataclasses.asdict(config),
        "pack": config.pack,
        "pack_hash": pack_hash,
        "depth": pack.depth,
        "ceilings": table,
        "summary": summary,
        "headline": headline(summary, headline_agent(runs_to_do)),
        "runs": [compact_run(run) for run in runs],
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    # What the reward pays for goes with every result on it: a score is only as good as its reward.
    audit = audit_pack(pack, reward=config.reward)
    write_audit(out / "audit", audit)
    write_report(out, results, audit)
    plot(out, summary, config.budget)
    return out
