"""``teams-rl bench``: benchmark RL algorithms on instruction diversity.

For every agent and seed: train it (when it learns) for the same number of environment steps,
which is the same budget of reviewer queries, on the training seed instructions; then run it
from the same held-out instructions and measure the mean episode reward, the reviewer's Not-Equal
rate, the diversity of the instructions it produced (Vendi score, distinct-1/2, cosine distances;
the Vendi score also on random subsets of one size for every run, since the raw score grows with the
number of rewrites kept),
how often it took each action at each step, the queries and cache hits, and the wall time.

Writes ``benchmark.md`` (a table per metric, mean and 95% confidence interval over seeds, the exact
command, versions and backends, and how many runs stand behind each number), ``results.json`` and
plots (reward curves with bands, diversity bars, action-frequency heatmaps by step). Each finished
run is journaled in ``runs.jsonl``: the same command resumes after a crash, and adding seeds or
agents reuses the runs already done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from teams_env.actions import ACTION_NAMES
from teams_env.encoder import shared_encoder
from teams_env.env_config import EnvConfig
from teams_env.llm.accounting import QueryLedger
from teams_env.metrics import diversity_summary, subsampled_columns, subsampled_vendi
from teams_env.reward.elimination import leaked_phrase
from teams_env.reward.formula import rewarded_in
from teams_env.reward.reviewer import NOT_EQUAL
from teams_env.seeds import load_seeds
from teams_env.system_info import machine
from teams_rl.agents.benchmark.roster import BenchAgent, bench_agents
from teams_rl.agents.benchmark.statistics import mean_and_ci95
from teams_rl.agents.commands import BenchConfig, TrainConfig
from teams_rl.agents.episodes import Trajectory, rollout
from teams_rl.agents.journal import Journal

METRICS = (
    ("mean_episode_reward", "mean episode reward (of 6)"),
    ("not_equal_rate", "reviewer Not-Equal rate"),
    ("items", "rewrites kept (Not Equal, no leak)"),
    (
        "vendi_subsampled",
        "Vendi score of {size} random kept rewrites (mean over 200 subsets; every run at the same size, "
        "the fewest any run kept)",
    ),
    ("vendi_subsampled_per_item", "Vendi score per kept rewrite, on {size} random ones"),
    (
        "vendi_score",
        "Vendi score of all kept rewrites, raw (grows with n = rewrites kept, which differs by run)",
    ),
    ("vendi_per_item", "Vendi score of all kept rewrites / n, raw"),
    ("distinct_1", "distinct-1 of kept rewrites"),
    ("distinct_2", "distinct-2 of kept rewrites"),
    ("mean_pairwise_cosine_distance", "mean pairwise cosine distance"),
    ("mean_nearest_neighbour_distance", "mean nearest-neighbour distance"),
    ("train_reviewer_queries", "reviewer LLM calls in training (requests the cache did not answer)"),
    ("eval_expert_queries", "expert LLM calls in evaluation (requests the cache did not answer)"),
    ("eval_cache_hits", "cache hits in evaluation"),
    ("wall_seconds", "wall time (s; agents share one cache, so later ones find more answers in it)"),
)


def _measure(trajectories: Sequence[Trajectory], encoder: Any) -> dict[str, Any]:
    infos = [info for t in trajectories for info in t.infos]
    kept = [i["instruction"] for i in infos if rewarded_in(i) and not leaked_phrase(i["instruction"])]
    steps = len(trajectories[0].infos)
    by_step = np.zeros((steps, len(ACTION_NAMES)))
    for t in trajectories:
        for step, info in enumerate(t.infos):
            by_step[step, info["action"]] += 1
    by_step /= len(trajectories)
    return {
        "mean_episode_reward": float(np.mean([sum(t.rewards) for t in trajectories])),
        "not_equal_rate": float(np.mean([i["verdict"] == NOT_EQUAL for i in infos])),
        **diversity_summary(kept, encoder.encode),
        "kept": kept,  # for the size-controlled Vendi score, once every run's count is known
        "action_frequencies": dict(zip(ACTION_NAMES, by_step.mean(axis=0).tolist())),
        "action_frequencies_by_step": by_step.tolist(),
    }


def _identity(value: Any) -> Any:
    """An env override as plain data that names what it is (a backend or encoder by its identity)."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, Mapping):
        return {str(k): _identity(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_identity(v) for v in value]
    for name in ("identity", "name"):
        named = getattr(value, name, None)
        if isinstance(named, str):
            return f"{type(value).__name__}:{named}"
    return type(value).__name__


def _run_key(
    config: BenchConfig, agent: BenchAgent, seed: int, env_overrides: Mapping[str, Any] | None = None
) -> str:
    """What decides one run's result: every setting but the output folder and the lists of agents
    and seeds, and the env overrides (another reviewer object gives another key), so a bench re-run
    with more seeds or agents reuses the runs it already has and nothing else."""
    settings = {
        # the instruction source under its former name, so runs journaled before the rename keep their keys
        ("instructions" if k == "seeds" else k): v
        for k, v in dataclasses.asdict(config).items()
        if k not in ("out", "run_seeds", "algos", "variants", "agents")
    }
    identity: dict[str, Any] = {"settings": settings, "agent": dataclasses.asdict(agent), "seed": seed}
    if env_overrides:  # absent without overrides: keys of benches run from the command line are unchanged
        identity["env_overrides"] = {k: _identity(v) for k, v in sorted(env_overrides.items())}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


def _run_one(
    agent: BenchAgent,
    seed: int,
    config: BenchConfig,
    env_kwargs: Mapping[str, Any],
    train_instructions: list[str],
    held_out: list[Any],
    encoder: Any,
) -> dict[str, Any]:
    from teams_rl.agents.training.train import train

    start = time.perf_counter()
    kwargs = {**env_kwargs, "action_type": agent.action_type, "observation": agent.observation}
    result: dict[str, Any] = {"agent": agent.name, "seed": seed}
    policy = agent.policy
    if agent.learns:
        shared = {f.name: getattr(config, f.name) for f in dataclasses.fields(EnvConfig) if f.name != "seeds"}
        train_config = TrainConfig(
            **{**shared, "observation": agent.observation},
            algo=agent.algo,
            action_type=agent.action_type,
            total_timesteps=config.budget,
            n_envs=config.n_envs,
            seed=seed,
            hyperparams=dict(agent.hyperparams),
            out=str(Path(config.out) / "runs"),
            run_name=f"{agent.name.replace('/', '-')}__{seed}",
            progress_bar=False,
        )
        overrides = {
            k: v for k, v in kwargs.items() if not isinstance(v, (str, int, float, bool, type(None)))
        }
        # A run directory without a journal record is an interrupted run: train it again (its
        # LLM answers are cached, so this costs model-free time only).
        shutil.rmtree(Path(train_config.out).expanduser() / train_config.run_name, ignore_errors=True)
        run_dir = train(train_config, env_overrides={**overrides, "seeds": train_instructions})
        policy = str(run_dir)
        queries = json.loads((run_dir / "queries.json").read_text(encoding="utf-8"))
        result["train_reviewer_queries"] = queries.get("reviewer", {}).get("queries", 0)
        result["run_dir"] = str(run_dir)
        result["episodes_file"] = str(run_dir / "episodes.jsonl")
    else:
        result["train_reviewer_queries"] = 0
    ledger = QueryLedger()
    trajectories = [
        t
        for batch in rollout(
            policy,
            held_out,
            kwargs,
            n_envs=config.n_envs,
            deterministic=config.deterministic,
            seed=seed,
            ledger=ledger,
        )
        for t in batch
    ]
    result.update(_measure(trajectories, encoder))
    usage = ledger.total()
    result["eval_expert_queries"] = ledger.usage("expert").queries
    result["eval_cache_hits"] = usage.cache_hits
    result["wall_seconds"] = time.perf_counter() - start
    return result


def size_controlled(runs: Sequence[dict[str, Any]], encoder: Any) -> int | None:
    """Add each run's Vendi score on random subsets of one size (the fewest rewrites any run kept,
    at least 2) to the run; returns that size (None when no run kept 2). A run recorded before the
    rewrites were kept in the journal gets NaN."""
    usable = [len(run["kept"]) for run in runs if len(run.get("kept") or []) >= 2]
    size = min(usable) if usable else None
    for run in runs:
        kept = run.get("kept") or []
        enough = size is not None and len(kept) >= 2
        run.update(
            subsampled_columns(subsampled_vendi(encoder.encode(kept), size, seed=0) if enough else None)
        )
    return size


def summarize(runs: Sequence[Mapping[str, Any]], agents: Sequence[BenchAgent]) -> dict[str, Any]:
    """Per agent and metric: mean, 95% CI half-width and the number of runs."""
    summary: dict[str, Any] = {}
    for agent in agents:
        mine = [r for r in runs if r["agent"] == agent.name]
        summary[agent.name] = {
            metric: dict(
                zip(
                    ("mean", "ci95", "n"),
                    (*mean_and_ci95([float(r.get(metric, float("nan"))) for r in mine]), len(mine)),
                )
            )
            for metric, _ in METRICS
        }
        frequencies = np.mean([r["action_frequencies_by_step"] for r in mine], axis=0)
        summary[agent.name]["action_frequencies_by_step"] = frequencies.tolist()
    return summary


def bench(config: BenchConfig, env_overrides: Mapping[str, Any] | None = None) -> Path:
    """Run the comparison; returns the output directory."""
    from teams_rl.agents.benchmark.live_report import write_report

    agents = bench_agents(config)
    out = Path(config.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    instructions = load_seeds(config.seeds).seeds
    held_out = instructions[config.eval_offset : config.eval_offset + config.eval_limit]
    if len(held_out) < 2:
        raise ValueError(
            f"--seeds {config.seeds}: {len(instructions)} instructions leave no held-out slice at offset "
            f"{config.eval_offset}; lower --eval-offset"
        )
    train_instructions = [s.text for s in instructions if s not in held_out]
    env_kwargs = {**config.env_kwargs(), **(env_overrides or {})}
    encoder_spec = env_kwargs.get("encoder", "default")
    encoder = shared_encoder(encoder_spec) if isinstance(encoder_spec, str) else encoder_spec
    journal = Journal(out / "runs.jsonl")
    finished = {record["key"]: record["result"] for record in journal.records}
    runs = []
    plan = [(agent, seed) for agent in agents for seed in config.run_seeds]
    for number, (agent, seed) in enumerate(plan, start=1):
        key = _run_key(config, agent, seed, env_overrides)
        where = f"bench [{number}/{len(plan)}] {agent.name}, seed {seed}"
        if key in finished:
            print(f"{where}: done in an earlier run, reused", flush=True)
            runs.append(finished[key])
            continue
        print(f"{where}: running", flush=True)
        result = _run_one(agent, seed, config, env_kwargs, train_instructions, held_out, encoder)
        journal.append({"key": key, "result": result})
        print(
            f"{where}: reward {result['mean_episode_reward']:.2f}, "
            f"Vendi {result['vendi_score']:.2f} raw (n={result['items']} kept), "
            f"{result['wall_seconds']:.0f} s",
            flush=True,
        )
        runs.append(result)
    size = size_controlled(runs, encoder)
    summary = summarize(runs, agents)
    results = {
        "command": "teams-rl " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if sys.argv[1:]
        else "bench()",
        "config": dataclasses.asdict(config),
        "machine": machine(),
        "backends": {
            k: str(getattr(v, "identity", v))
            for k, v in env_kwargs.items()
            if k in ("expert", "reviewer", "encoder") and v  # an empty reviewer is the expert
        },
        "held_out": [s.id for s in held_out],
        "diversity_subsample_size": size,
        "agents": [agent.__dict__ | {"hyperparams": dict(agent.hyperparams)} for agent in agents],
        "summary": summary,
        "runs": runs,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    write_report(out, results, METRICS)
    return out


def terminal_summary(results: Mapping[str, Any]) -> list[str]:
    """What a live bench prints: each agent's mean episode reward and size-controlled Vendi score."""
    size = results["diversity_subsample_size"]
    lines = [f"held-out seeds: mean episode reward, Vendi score of {size} random kept rewrites"]
    for name, stats in results["summary"].items():
        reward, vendi = stats["mean_episode_reward"], stats["vendi_subsampled"]
        lines.append(f"  {name:<24} {reward['mean']:.3f}  {vendi['mean']:.2f}  ({reward['n']} runs)")
    return lines


def run(config: BenchConfig) -> int:
    if config.pack:
        from teams_rl.agents.benchmark.pack import bench_pack
        from teams_rl.agents.benchmark.pack_report import terminal_summary as pack_summary

        out = bench_pack(config)
        lines = pack_summary(json.loads((out / "results.json").read_text(encoding="utf-8")))
    else:
        out = bench(config)
        lines = terminal_summary(json.loads((out / "results.json").read_text(encoding="utf-8")))
    print("\n".join(lines))
    print(f"report: {out / 'benchmark.md'}")
    return 0
