"""``teams-rl bench --pack PACK``: RL algorithms on a recorded MDP, against its exact ceilings.

The replay env (:mod:`teams_env.replay`) serves a pack recorded by ``teams-rl record`` at thousands
of steps a second, so every algorithm can train for tens of thousands of steps on many seeds. Each
learning agent trains on the pack's ``train`` seeds; every agent is then evaluated, one episode per
seed with its most likely action (the env is deterministic, so that return is exact), on the
``train`` seeds and on the ``heldout`` seeds it never saw.

Ceilings and floor, per split, from dynamic programming over the pack (:mod:`teams_env.optimum`):
``optimal`` (the best return of each seed), the uniform policy's exact expected return, and the
best fixed action sequence. An agent's normalized score is ``(R - uniform) / (optimal - uniform)``:
0 is Evol-Instruct's uniform sampling, 1 the optimum. ``best-fixed`` is chosen on the training
seeds (the text-blind ceiling a learner could reach from them) and applied to both splits.

Writes ``benchmark.md``, ``results.json``, ``curves.png`` (training returns, normalized, mean and
95% band over seeds) and ``scores.png``; each finished run is journaled in ``runs.jsonl``, so the
same command resumes and more seeds or agents reuse the runs already done.
"""

from __future__ import annotations

import dataclasses
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

from agents.baselines import REFERENCE_SEQUENCE
from agents.config import BenchConfig
from agents.journal import Journal
from teams_env.actions import ACTION_NAMES
from teams_env.elimination import leaked_phrase
from teams_env.reviewer import NOT_EQUAL

SPLITS = ("train", "heldout")
POLICIES = ("uniform", "reference", "best-fixed", "optimal")
"""Policies run as they are (``fixed`` on the command line is the authors' ``reference``)."""
CURVE_POINTS = 20
"""Training curves are the mean episode return in this many equal slices of the budget."""


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

    @property
    def key(self) -> str:
        identity = dataclasses.asdict(self) | {"pack": ""}  # the content hash names the pack, not its path
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _env(run: PackRun, split: str, seed: int = 0) -> Any:
    import gymnasium as gym

    from teams_env import REPLAY_ENV_IDS

    env_id = REPLAY_ENV_IDS[run.action_type == "discrete"]
    env = gym.make(env_id, pack=run.pack, seeds=split, observation=run.observation, reward=run.reward)
    env.reset(seed=seed)
    return env


def _train(run: PackRun) -> tuple[Any, list[tuple[int, float]]]:
    """The trained SB3 model and its training episodes as (timestep, return)."""
    import torch
    from stable_baselines3.common.env_util import make_vec_env

    from agents.algorithms import get_algorithm
    from agents.hyperparameters import load_hyperparams, model_arguments

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


def _episodes(env: Any, act: Any) -> list[dict[str, Any]]:
    """One episode from each seed of ``env``'s split; ``act(observation, step)`` picks the action."""
    results = []
    for seed_id in env.unwrapped.seed_ids:
        observation, _ = env.reset(options={"seed_id": seed_id})
        total, infos, done, step = 0.0, [], False, 0
        while not done:
            observation, reward, terminated, truncated, info = env.step(act(observation, step))
            total += float(reward)
            infos.append(info)
            done, step = terminated or truncated, step + 1
        results.append({"seed_id": seed_id, "return": total, "infos": infos})
    return results


def _kept(episodes: list[dict[str, Any]]) -> list[str]:
    """The rewrites a dataset would keep: Not Equal, valid, no leaked prompt words."""
    return [
        info["instruction"]
        for episode in episodes
        for info in episode["infos"]
        if info.get("verdict") == NOT_EQUAL
        and info.get("valid", True)
        and not leaked_phrase(info["instruction"])
    ]


def _actor(run: PackRun, env: Any, model: Any, best_fixed: Sequence[int]) -> Any:
    """``act(observation, step)`` for the run's agent on ``env``."""
    from agents.oracles import env_optimum

    if model is not None:
        return lambda observation, step: model.predict(observation, deterministic=True)[0]
    if run.agent == "uniform":  # one sampled episode per seed; the exact expectation is the floor
        rng = np.random.default_rng(run.seed)
        return lambda observation, step: int(rng.integers(len(ACTION_NAMES)))
    if run.agent == "reference":
        sequence = [ACTION_NAMES.index(name) for name in REFERENCE_SEQUENCE]
        return lambda observation, step: sequence[step % len(sequence)]
    if run.agent == "best-fixed":
        return lambda observation, step: best_fixed[step]
    optimum = env_optimum(env.unwrapped)
    return lambda observation, step: optimum.best_action[env.unwrapped.node_key]


def run_one(run: PackRun) -> dict[str, Any]:
    """Train (if the agent learns) and evaluate one run on both splits."""
    from agents.oracles import env_optimum

    start = time.perf_counter()
    model, training = _train(run) if run.algo else (None, [])
    # Only the best-fixed agent needs the train split solved (costly with a novelty reward).
    best_fixed = env_optimum(_env(run, "train").unwrapped).best_fixed if run.agent == "best-fixed" else ()
    curve = _curve(training, run.budget) if run.algo else []
    result: dict[str, Any] = {"agent": run.agent, "seed": run.seed, "curve": curve}
    for split in SPLITS:
        env = _env(run, split, seed=run.seed)
        episodes = _episodes(env, _actor(run, env, model, best_fixed))
        returns = [episode["return"] for episode in episodes]
        actions = [info["action"] for episode in episodes for info in episode["infos"]]
        result[split] = {
            "return": float(np.mean(returns)),
            "kept": _kept(episodes),
            "action_frequencies": np.bincount(actions, minlength=len(ACTION_NAMES)).tolist(),
        }
    result["wall_seconds"] = time.perf_counter() - start
    return result


def ceilings(pack: str, reward: str) -> dict[str, dict[str, Any]]:
    """Per split: optimal, uniform-expected and best-fixed returns (best-fixed chosen on train)."""
    from agents.oracles import env_optimum
    from teams_env.optimum import uniform_returns

    probe = PackRun("optimal", 0, pack, "", 1, 1, reward, observation="last_action")  # no embeddings needed
    chosen = env_optimum(_env(probe, "train").unwrapped).best_fixed
    table: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        env = _env(probe, split).unwrapped
        optimum = env_optimum(env)
        fixed = [
            sum(env.transition_reward(s, chosen[: d + 1]) for d in range(len(chosen))) for s in env.seed_ids
        ]
        uniform = uniform_returns(env.transition_reward, env.seed_ids, len(ACTION_NAMES), env.max_steps)
        table[split] = {
            "seeds": len(env.seed_ids),
            "optimal": optimum.mean_value,
            "uniform": float(np.mean(list(uniform.values()))),
            "best_fixed": float(np.mean(fixed)),
            "best_fixed_sequence": [ACTION_NAMES[a] for a in chosen],
            "best_fixed_oracle": optimum.best_fixed_return,
        }
    return table


def plan(config: BenchConfig, pack_hash: str) -> list[PackRun]:
    """Every (agent, seed) run of a pack bench; agents the replay env cannot serve are an error."""
    from agents.bench import bench_agents

    runs = []
    for agent in bench_agents(config):
        if not agent.learns and agent.policy not in POLICIES:
            raise ValueError(
                f"agent '{agent.name}': a pack bench runs SB3 algorithms and {', '.join(POLICIES)} "
                "(fixed is reference); run custom agents with gym.make('TeaMsInstructReplay-v0')"
            )
        for seed in config.seeds:
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
                    hyperparams=dict(agent.hyperparams),
                )
            )
    return runs


def _normalized(value: float, ceiling: Mapping[str, Any]) -> float:
    span = ceiling["optimal"] - ceiling["uniform"]
    return (value - ceiling["uniform"]) / span if span > 0 else float("nan")


def summarize(
    runs: Sequence[Mapping[str, Any]], agents: Sequence[str], table: Mapping[str, Any], encoder: Any
) -> dict[str, Any]:
    """Per split and agent: return, normalized score and size-controlled diversity (mean, 95% CI, n)."""
    from agents.bench import mean_and_ci95
    from teams_env.metrics import subsampled_vendi

    summary: dict[str, Any] = {"diversity_subsample_size": {}}
    for split in SPLITS:
        usable = [len(run[split]["kept"]) for run in runs if len(run[split]["kept"]) >= 2]
        size = min(usable) if usable else None
        summary["diversity_subsample_size"][split] = size
        for run in runs:
            kept = run[split]["kept"]
            vendi = subsampled_vendi(encoder.encode(kept), size, seed=0) if size and len(kept) >= 2 else None
            run[split]["normalized"] = _normalized(run[split]["return"], table[split])
            run[split]["vendi_subsampled"] = vendi.mean if vendi else float("nan")
        summary[split] = {}
        for agent in agents:
            mine = [run[split] for run in runs if run["agent"] == agent]
            summary[split][agent] = {
                metric: dict(zip(("mean", "ci95"), mean_and_ci95([m[metric] for m in mine])))
                | {"n": len(mine)}
                for metric in ("return", "normalized", "vendi_subsampled")
            } | {"kept": dict(zip(("mean", "ci95"), mean_and_ci95([len(m["kept"]) for m in mine])))}
    curves = {}
    for agent in agents:
        # Only learners have a training curve (a policy's is empty, or all NaN in older journals).
        rows = [run["curve"] for run in runs if run["agent"] == agent and np.isfinite(run["curve"]).any()]
        if rows:
            normalized = [[_normalized(v, table["train"]) for v in row] for row in rows]
            curves[agent] = [
                dict(zip(("mean", "ci95"), mean_and_ci95(column))) for column in zip(*normalized)
            ]
    summary["curves"] = curves
    return summary


def _cell(stat: Mapping[str, float], digits: int = 2) -> str:
    if np.isnan(stat["mean"]):
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['ci95']:.{digits}f}"


def headline(summary: Mapping[str, Any], learner: str = "trpo") -> str:
    """The README sentence: does ``learner`` beat uniform on held-out seeds, and by how much."""
    heldout = summary["heldout"].get(learner)
    if heldout is None:
        return f"{learner} was not in this bench."
    score = heldout["normalized"]
    low, high = score["mean"] - score["ci95"], score["mean"] + score["ci95"]
    verdict = (
        "beats uniform"
        if low > 0
        else "is worse than uniform"
        if high < 0
        else "is not distinguishable from uniform"
    )
    sentence = (
        f"On held-out seeds {learner.upper()} {verdict}: normalized score {score['mean']:.2f} "
        f"(95% CI {low:.2f} to {high:.2f}, {score['n']} seeds), i.e. it closes {100 * score['mean']:.0f}% "
        "of the gap from uniform sampling to the optimum."
    )
    fixed = summary["heldout"].get("best-fixed")
    if fixed is not None:  # the text-blind ceiling: what a policy gains by reading the instruction
        sentence += (
            f" The best fixed action sequence (chosen on the training seeds, blind to the text) "
            f"scores {fixed['normalized']['mean']:.2f}."
        )
    return sentence


def write_report(out: Path, results: Mapping[str, Any]) -> None:
    summary, table, machine = results["summary"], results["ceilings"], results["machine"]
    lines = [
        "# Pack benchmark",
        "",
        f"Command: `{results['command']}`  ",
        f"Pack: `{results['pack']}` (content {results['pack_hash'][:12]}, depth {results['depth']}, "
        f"reward `{results['config']['reward']}`)  ",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB, accelerator "
        f"{machine['accelerator']}; Python {machine['python']}; "
        f"{', '.join(f'{k} {v}' for k, v in machine['versions'].items())}  ",
        f"Date: {results['date']}",
        "",
        f"**{headline(summary)}**",
        "",
        "Each learner trained for "
        f"{results['config']['budget']} steps on the train seeds ({results['config']['n_envs']} envs), "
        "then was evaluated with its most likely action, one episode per seed (the replay env is "
        "deterministic). Mean ± 95% CI over random seeds (Student's t); n = runs. Normalized score: "
        "0 = uniform sampling's exact expected return, 1 = the optimum. `uniform` rows are sampled "
        "episodes; `best-fixed` is the best action sequence on the train seeds, applied to both splits.",
        "",
        "## Ceilings (exact, by dynamic programming)",
        "",
        "| split | seeds | uniform (expected) | authors' fixed | best fixed | optimal |",
        "|---|---|---|---|---|---|",
    ]
    for split in SPLITS:
        ceiling = table[split]
        fixed = summary[split].get("reference", {}).get("return", {"mean": float("nan")})["mean"]
        lines.append(
            f"| {split} | {ceiling['seeds']} | {ceiling['uniform']:.3f} | {fixed:.3f} | "
            f"{ceiling['best_fixed']:.3f} ({', '.join(ceiling['best_fixed_sequence'])}) | {ceiling['optimal']:.3f} |"
        )
    for split in SPLITS:
        size = summary["diversity_subsample_size"][split]
        lines += [
            "",
            f"## {'Training' if split == 'train' else 'Held-out'} seeds",
            "",
            f"| agent | n | return | normalized score | kept rewrites | Vendi of {size} random kept |",
            "|---|---|---|---|---|---|",
        ]
        for agent, stats in summary[split].items():
            lines.append(
                f"| {agent} | {stats['return']['n']} | {_cell(stats['return'])} | {_cell(stats['normalized'])} | "
                f"{_cell(stats['kept'], 1)} | {_cell(stats['vendi_subsampled'])} |"
            )
    lines += [
        "",
        "Kept rewrites: Not Equal, valid, no leaked prompt words, over all evaluation episodes of the "
        "split. Vendi is computed on equal-sized random subsets (mean of 200) for every run, the size "
        "being the fewest any run kept, so agents are compared at the same set size.",
        "",
        "![training curves](curves.png)",
        "",
        "![normalized scores](scores.png)",
        "",
    ]
    (out / "benchmark.md").write_text("\n".join(lines), encoding="utf-8")


def plot(out: Path, summary: Mapping[str, Any], budget: int) -> None:
    from agents.plots import pyplot, save_figure

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4))
    steps = (np.arange(CURVE_POINTS) + 0.5) * budget / CURVE_POINTS
    for index, (agent, curve) in enumerate(summary["curves"].items()):
        mean = np.array([point["mean"] for point in curve])
        half = np.array([point["ci95"] for point in curve])
        axes.plot(steps, mean, color=f"C{index}", label=agent)
        axes.fill_between(steps, mean - half, mean + half, color=f"C{index}", alpha=0.2)
    axes.axhline(0, color="grey", linestyle="--", linewidth=1)
    axes.axhline(1, color="black", linestyle="--", linewidth=1)
    axes.set_xlabel("environment steps")
    axes.set_ylabel("training return, normalized (0 uniform, 1 optimal)")
    axes.set_title("Training on the pack's train seeds (stochastic policy)")
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    save_figure(figure, out / "curves.png")

    figure, axes = plt.subplots(figsize=(8, 4))
    agents = list(summary["train"])
    width = 0.4
    for offset, split in ((-width / 2, "train"), (width / 2, "heldout")):
        means = [summary[split][agent]["normalized"]["mean"] for agent in agents]
        errors = [summary[split][agent]["normalized"]["ci95"] for agent in agents]
        axes.bar(np.arange(len(agents)) + offset, means, width, yerr=errors, capsize=3, label=split)
    axes.axhline(0, color="grey", linewidth=1)
    axes.set_xticks(np.arange(len(agents)), agents, rotation=30, ha="right")
    axes.set_ylabel("normalized score (0 uniform, 1 optimal)")
    axes.legend()
    figure.tight_layout()
    save_figure(figure, out / "scores.png")


def bench_pack(config: BenchConfig) -> Path:
    """Run the pack benchmark of ``config`` (``config.pack`` set); returns the output directory."""
    from datetime import datetime, timezone

    from teams_env.pack import shared_pack
    from teams_env.system_info import machine

    pack = shared_pack(config.pack)
    pack_hash = str(pack.manifest.get("content_sha256", ""))
    runs_to_do = plan(config, pack_hash)
    agents = list(dict.fromkeys(run.agent for run in runs_to_do))
    out = Path(config.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    journal = Journal(out / "runs.jsonl")
    finished = {record["key"]: record["result"] for record in journal.records}
    todo = [run for run in runs_to_do if run.key not in finished]
    print(f"bench --pack: {len(runs_to_do)} runs, {len(runs_to_do) - len(todo)} done earlier", flush=True)
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
        "headline": headline(summary),
        "runs": runs,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    write_report(out, results)
    plot(out, summary, config.budget)
    return out
