"""``teams-rl bench --pack PACK``: RL algorithms on a recorded MDP, against its exact ceilings.

The replay env (:mod:`teams_env.replay`) serves a pack recorded by ``teams-rl record`` at thousands
of steps a second, so every algorithm can train for tens of thousands of steps on many seeds. Each
learning agent trains on the pack's ``train`` seeds; every agent is then evaluated, one episode per
seed with its most likely action (the env is deterministic, so that return is exact), on the
``train`` seeds and on the ``heldout`` seeds it never saw.

Ceilings and floor, per split and per seed, from dynamic programming over the pack
(:mod:`teams_env.optimum`): ``optimal`` (the best return of each seed), the uniform policy's exact
expected return, and the best fixed action sequence. An agent's normalized score is
``(R - uniform) / (optimal - uniform)``: 0 is Evol-Instruct's uniform sampling, 1 the optimum.
``best-fixed`` is chosen on the training seeds (the text-blind ceiling a learner could reach from
them) and applied to both splits; ``supervised`` and ``nearest-seed`` (:mod:`agents.text_baselines`)
learn the training seeds' optimal actions from the text, without RL.

The headline statistics follow rliable (:mod:`agents.rl_statistics`): per split, the interquartile
mean of the per-seed normalized scores (runs = an agent's training seeds, tasks = the evaluation
seeds) with a stratified bootstrap 95% interval, and the probability that a run improves on
uniform and on best-fixed. Beside them, what the evaluation episodes are worth as a dataset per
expert query they cost: distinct kept rewrites (rewarded, valid, no leak, no near-duplicate) and
their Vendi score, each divided by the expert queries (equal for every agent: one episode of the
pack's depth per seed).

Writes ``benchmark.md``, ``results.json``, ``curves.png`` (training returns, normalized, mean and
95% band over seeds), ``scores.png``, and per split a performance profile (``profile_SPLIT.png``)
and the IQM intervals (``iqm_SPLIT.png``); each finished run is journaled in ``runs.jsonl``, so the
same command resumes and more seeds or agents reuse the runs already done (a run journaled before
per-seed results existed is run again; everything else is recomputed from the journal).
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
from agents.pack_audit import audit_pack, junk_tables, rates_table, write_audit
from agents.rl_statistics import MIN_RUNS_FOR_T
from teams_env.actions import ACTION_NAMES
from teams_env.elimination import leaked_phrase
from teams_env.reviewer import NOT_EQUAL

SPLITS = ("train", "heldout")
TEXT_BASELINES = ("supervised", "nearest-seed")
"""Policies fitted to the train seeds' optimum (:mod:`agents.text_baselines`): what reading the
instruction can buy without RL."""
POLICIES = ("uniform", "reference", "best-fixed", "optimal", *TEXT_BASELINES)
"""Policies run as they are (``fixed`` on the command line is the authors' ``reference``)."""
RESULT_FIELDS = ("seeds",)
"""Per-split fields a journaled run must have to be reused; a run journaled before one of them
existed is run again (its result would lack per-seed scores and expert queries)."""
CURVE_POINTS = 20
"""Training curves are the mean episode return in this many equal slices of the budget."""
NEAR_DUPLICATE_COSINE = 0.95
"""A kept rewrite this cosine-similar to one kept before it adds nothing to a dataset."""
BOOTSTRAP_REPS = 2000
"""Stratified bootstrap resamples behind every interval of the rliable statistics."""
SPAN_TOLERANCE = 1e-9
"""A seed whose optimum beats uniform's expected return by no more than this is no task."""
PROFILE_POINTS = 101
"""Thresholds of a performance profile."""
MEAN_METRICS = ("return", "normalized", "vendi_subsampled")
WORTH_METRICS = (
    "expert_queries",
    "distinct_kept",
    "distinct_kept_per_query",
    "vendi_kept",
    "vendi_per_query",
)


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


def policy_actor(policy: Any) -> Any:
    """``act(observation, step)`` for an SB3-style ``policy.predict``: its most likely action, with
    the state it returned carried through the episode and reset at step 0 (a recurrent policy's
    memory, a baseline's step counter)."""
    state = None

    def act(observation: Any, step: int) -> Any:
        nonlocal state
        action, state = policy.predict(
            observation,
            state=state if step else None,
            episode_start=np.array([step == 0]),
            deterministic=True,
        )
        return action

    return act


def play_episodes(env: Any, act: Any) -> list[dict[str, Any]]:
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
        return policy_actor(model)
    if run.agent == "uniform":  # one sampled episode per seed; the exact expectation is the floor
        rng = np.random.default_rng(run.seed)
        return lambda observation, step: int(rng.integers(len(ACTION_NAMES)))
    if run.agent == "reference":
        sequence = [ACTION_NAMES.index(name) for name in REFERENCE_SEQUENCE]
        return lambda observation, step: sequence[step % len(sequence)]
    if run.agent == "best-fixed":
        return lambda observation, step: best_fixed[step]
    if run.agent in TEXT_BASELINES:  # learnt from the train seeds, whatever split they act on
        from agents.baselines import make_baseline

        agent = make_baseline(run.agent, env, run.seed)
        assert agent is not None
        return policy_actor(agent)
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
    from agents.oracles import env_optimum

    start = time.perf_counter()
    model, training = _train(run) if run.algo else (None, [])
    # Only the best-fixed agent needs the train split solved (costly with a novelty reward).
    best_fixed = env_optimum(_env(run, "train").unwrapped).best_fixed if run.agent == "best-fixed" else ()
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
    from agents.oracles import env_optimum
    from teams_env.optimum import sequence_returns, uniform_returns

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
    from agents.bench import bench_agents

    runs = []
    for agent in bench_agents(config):
        if not agent.learns and agent.policy not in POLICIES:
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
                    hyperparams=dict(agent.hyperparams),
                )
            )
    return runs


def _normalized(value: float, ceiling: Mapping[str, Any]) -> float:
    span = ceiling["optimal"] - ceiling["uniform"]
    return (value - ceiling["uniform"]) / span if span > 0 else float("nan")


class _Embeddings:
    """Unit-norm embeddings of texts by ``encoder``, each text encoded once (in one batch per call
    of ``add``): many agents keep the same rewrites of a deterministic pack."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.vectors: dict[str, np.ndarray] = {}

    def add(self, texts: Sequence[str]) -> None:
        new = list(dict.fromkeys(text for text in texts if text not in self.vectors))
        if new:
            matrix = np.asarray(self.encoder.encode(new), dtype=np.float64)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            for text, row in zip(new, matrix / np.where(norms > 0, norms, 1.0)):
                self.vectors[text] = row

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.add(texts)
        return np.stack([self.vectors[text] for text in texts])


def distinct_kept(per_seed: Sequence[Mapping[str, Any]], embed: Any) -> list[str]:
    """The kept rewrites of a split's episodes (seed order, then step order) without near-duplicates:
    a rewrite whose cosine similarity to one already kept is ``NEAR_DUPLICATE_COSINE`` or more is
    dropped (``teams-rl generate``'s default ``dedup_threshold``, same encoder as the pack)."""
    texts = [text for episode in per_seed for text in episode["kept"]]
    if not texts:
        return []
    vectors = embed(texts)
    chosen: list[int] = []
    for index in range(len(texts)):
        if not chosen or float(np.max(vectors[chosen] @ vectors[index])) < NEAR_DUPLICATE_COSINE:
            chosen.append(index)
    return [texts[index] for index in chosen]


def dataset_worth(per_seed: Sequence[Mapping[str, Any]], embed: Any) -> dict[str, float]:
    """What a split's evaluation episodes are worth as a dataset, per expert query they cost:
    ``distinct_kept / expert_queries`` and ``vendi_kept / expert_queries`` (see the report)."""
    from teams_env.metrics import vendi_score

    queries = sum(int(episode["expert_queries"]) for episode in per_seed)
    distinct = distinct_kept(per_seed, embed)
    vendi = vendi_score(embed(distinct)) if distinct else 0.0
    per_query = (lambda value: value / queries) if queries else (lambda value: float("nan"))
    return {
        "expert_queries": float(queries),
        "distinct_kept": float(len(distinct)),
        "distinct_kept_per_query": per_query(len(distinct)),
        "vendi_kept": vendi,
        "vendi_per_query": per_query(vendi),
    }


def _task_seeds(ceiling: Mapping[str, Any]) -> list[str]:
    """The split's seeds that tell policies apart: those whose optimum beats uniform's expectation
    (on the others every policy is optimal, and the per-seed score is undefined)."""
    return [s for s, c in ceiling["per_seed"].items() if c["optimal"] - c["uniform"] > SPAN_TOLERANCE]


def task_scores(runs: Sequence[Mapping[str, Any]], split: str, ceiling: Mapping[str, Any]) -> np.ndarray:
    """Per-seed normalized scores of ``runs`` on ``split``, shape (runs, task seeds): on seed ``s``,
    ``(R_s - U_s) / (O_s - U_s)`` with ``U_s`` uniform's exact expected return and ``O_s`` the
    optimum of that seed."""
    seeds = _task_seeds(ceiling)
    rows = []
    for run in runs:
        returns = {episode["seed_id"]: episode["return"] for episode in run[split]["seeds"]}
        rows.append(
            [
                (returns[s] - ceiling["per_seed"][s]["uniform"])
                / (ceiling["per_seed"][s]["optimal"] - ceiling["per_seed"][s]["uniform"])
                for s in seeds
            ]
        )
    return np.array(rows, dtype=float).reshape(len(runs), len(seeds))


def reference_scores(ceiling: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The exact references of a probability of improvement, one run each on the task seeds:
    uniform sampling's expected return (0 on every seed) and the best fixed sequence's return."""
    seeds = _task_seeds(ceiling)
    fixed = [
        (c["best_fixed"] - c["uniform"]) / (c["optimal"] - c["uniform"])
        for c in (ceiling["per_seed"][s] for s in seeds)
    ]
    return {"uniform": np.zeros((1, len(seeds))), "best-fixed": np.array([fixed], dtype=float)}


def _interval(interval: Any, **extra: Any) -> dict[str, Any]:
    return {"point": interval.point, "low": interval.low, "high": interval.high, **extra}


def rliable_summary(
    scores: Mapping[str, np.ndarray], ceiling: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Per agent: the IQM of its task scores with a stratified bootstrap 95% interval, and its
    probability of improvement over each exact reference (``reference_scores``) with its interval."""
    from agents.rl_statistics import iqm, probability_of_improvement_ci, stratified_bootstrap_ci

    usable = {agent: matrix for agent, matrix in scores.items() if matrix.size}
    intervals = stratified_bootstrap_ci(usable, iqm, reps=BOOTSTRAP_REPS) if usable else {}
    references = reference_scores(ceiling)
    result: dict[str, dict[str, Any]] = {}
    nan = {"point": float("nan"), "low": float("nan"), "high": float("nan")}
    for agent, matrix in scores.items():
        shape = {"runs": int(matrix.shape[0]), "tasks": int(matrix.shape[1])}
        if agent not in intervals:
            result[agent] = {"iqm": nan | shape, "p_improvement": dict.fromkeys(references, nan)}
            continue
        result[agent] = {
            "iqm": _interval(intervals[agent], **shape),
            "p_improvement": {
                name: _interval(probability_of_improvement_ci(matrix, reference, reps=BOOTSTRAP_REPS))
                for name, reference in references.items()
            },
        }
    return result


def summarize(
    runs: Sequence[Mapping[str, Any]],
    agents: Sequence[str],
    table: Mapping[str, Any],
    encoder: Any,
) -> dict[str, Any]:
    """Per split and agent: the IQM of per-seed normalized scores (stratified bootstrap 95% CI) and
    the probabilities of improvement over uniform and best-fixed; return, normalized return and
    size-controlled diversity (mean, 95% CI, n); what the kept rewrites are worth per expert query.
    Everything is computed from the journaled runs, so a resumed bench gets the same numbers."""
    from agents.bench import mean_and_ci95
    from teams_env.metrics import subsampled_vendi

    def stat(values: Sequence[float]) -> dict[str, float]:
        return dict(zip(("mean", "ci95"), mean_and_ci95(values))) | {"n": len(values)}

    embed = _Embeddings(encoder)
    embed.add([text for run in runs for split in SPLITS for text in run[split]["kept"]])
    summary: dict[str, Any] = {
        "diversity_subsample_size": {},
        "tasks": {},
        "task_scores": {},
        "near_duplicate_cosine": NEAR_DUPLICATE_COSINE,
        "bootstrap_reps": BOOTSTRAP_REPS,
    }
    for split in SPLITS:
        usable = [len(run[split]["kept"]) for run in runs if len(run[split]["kept"]) >= 2]
        size = min(usable) if usable else None
        summary["diversity_subsample_size"][split] = size
        for run in runs:
            kept = run[split]["kept"]
            vendi = subsampled_vendi(embed(kept), size, seed=0) if size and len(kept) >= 2 else None
            run[split]["normalized"] = _normalized(run[split]["return"], table[split])
            run[split]["vendi_subsampled"] = vendi.mean if vendi else float("nan")
            run[split].update(dataset_worth(run[split]["seeds"], embed))
        seeds = _task_seeds(table[split])
        summary["tasks"][split] = {
            "seeds": seeds,
            "left_out": [s for s in table[split]["per_seed"] if s not in seeds],
        }
        scores = {
            agent: task_scores([r for r in runs if r["agent"] == agent], split, table[split])
            for agent in agents
        }
        summary["task_scores"][split] = {agent: matrix.tolist() for agent, matrix in scores.items()}
        statistics = rliable_summary(scores, table[split])
        summary[split] = {}
        for agent in agents:
            mine = [run[split] for run in runs if run["agent"] == agent]
            summary[split][agent] = (
                statistics[agent]
                | {metric: stat([m[metric] for m in mine]) for metric in (*MEAN_METRICS, *WORTH_METRICS)}
                | {"kept": stat([len(m["kept"]) for m in mine])}
            )
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
    """``mean ± half-width``; the mean alone where fewer than ``MIN_RUNS_FOR_T`` runs make it (a
    Student's t interval of 2 runs is wider than the data and says nothing)."""
    if np.isnan(stat["mean"]):
        return "n/a"
    if stat.get("n", MIN_RUNS_FOR_T) < MIN_RUNS_FOR_T:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['ci95']:.{digits}f}"


def _range(interval: Mapping[str, float], digits: int = 2) -> str:
    """``point [low, high]``, or n/a."""
    if np.isnan(interval["point"]):
        return "n/a"
    return f"{interval['point']:.{digits}f} [{interval['low']:.{digits}f}, {interval['high']:.{digits}f}]"


def headline(summary: Mapping[str, Any], learner: str = "trpo") -> str:
    """The README sentence: does ``learner`` beat uniform on held-out seeds (the IQM's stratified
    bootstrap interval above 0), by how much, and how often a run beats uniform and best-fixed."""
    heldout = summary["heldout"].get(learner)
    if heldout is None:
        return f"{learner} was not in this bench."
    score = heldout["iqm"]
    if np.isnan(score["point"]):
        return f"On held-out seeds {learner.upper()} has no score: no held-out seed tells policies apart."
    verdict = (
        "beats uniform"
        if score["low"] > 0
        else "is worse than uniform"
        if score["high"] < 0
        else "is not distinguishable from uniform"
    )
    sentence = (
        f"On held-out seeds {learner.upper()} {verdict}: IQM normalized score {score['point']:.2f} "
        f"(95% stratified-bootstrap CI {score['low']:.2f} to {score['high']:.2f}; {score['runs']} runs × "
        f"{score['tasks']} seeds), i.e. it closes {100 * score['point']:.0f}% of the gap from uniform "
        "sampling to the optimum."
    )
    improvement = heldout.get("p_improvement", {})
    if improvement:
        sentence += (
            " "
            + ", ".join(
                f"P({learner.upper()} > {name}) = {_range(improvement[name])}"
                for name in ("uniform", "best-fixed")
                if name in improvement
            )
            + "."
        )
    bounds = [
        f"{agent} {summary['heldout'][agent]['iqm']['point']:.2f}"
        for agent in ("best-fixed", *TEXT_BASELINES)
        if agent in summary["heldout"] and agent != learner
    ]
    if bounds:  # the text-blind ceiling, and what reading the text buys without RL
        sentence += (
            f" IQM of the best fixed sequence (text-blind) and the text baselines: {', '.join(bounds)}."
        )
    return sentence


def write_report(out: Path, results: Mapping[str, Any], audit: Mapping[str, Any]) -> None:
    summary, table, machine = results["summary"], results["ceilings"], results["machine"]
    reps = summary.get("bootstrap_reps", BOOTSTRAP_REPS)
    authors = all("reference" in summary[split] for split in SPLITS)  # the authors' fixed sequence ran
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
        f"**{results.get('headline') or headline(summary)}**",
        "",
        "Each learner trained for "
        f"{results['config']['budget']} steps on the train seeds ({results['config']['n_envs']} envs), "
        "then was evaluated with its most likely action, one episode per seed (the replay env is "
        "deterministic). `uniform` rows are sampled episodes; `best-fixed` is the best action sequence "
        "on the train seeds, applied to both splits; `supervised` and `nearest-seed` learn from the "
        "train seeds' optimal actions (a softmax regression on the observation; the optimal policy of "
        "the most cosine-similar training seed), so on the train split nearest-seed is the optimum.",
        "",
        "How the scores are aggregated (after Agarwal et al., NeurIPS 2021):",
        "",
        "- **Per-seed normalized score** of a run on seed s: (R_s − U_s) / (O_s − U_s), with R_s its "
        "return, U_s uniform sampling's exact expected return and O_s the optimum on that seed (0 = "
        "uniform, 1 = optimal). Seeds whose optimum equals uniform's expectation tell no policies "
        "apart and are left out.",
        "- **IQM**: the interquartile mean (mean of the middle 50%) of all runs × seeds scores; runs "
        "are an agent's training seeds, tasks the evaluation seeds. **95% CI**: stratified bootstrap "
        f"({reps} resamples of the runs within each seed, percentile interval).",
        "- **P(X > Y)**: the probability that a run of X scores higher than Y on a random evaluation "
        "seed (ties count ½), averaged over seeds, with a stratified bootstrap 95% CI. Y is exact: "
        "uniform's expected return (score 0) or the best fixed sequence's return.",
        "- **normalized mean return**: (mean return − mean U) / (mean O − mean U) over the split, "
        "mean ± 95% CI over runs (Student's t); the training curves use it.",
        "",
        "## Ceilings (exact, by dynamic programming)",
        "",
        "| split | seeds | uniform (expected) |"
        + (" authors' fixed |" if authors else "")
        + " best fixed | optimal |",
        "|---|---|---|" + ("---|" if authors else "") + "---|---|",
    ]
    for split in SPLITS:
        ceiling = table[split]
        fixed = f" {summary[split]['reference']['return']['mean']:.3f} |" if authors else ""
        lines.append(
            f"| {split} | {ceiling['seeds']} | {ceiling['uniform']:.3f} |{fixed} "
            f"{ceiling['best_fixed']:.3f} ({', '.join(ceiling['best_fixed_sequence'])}) | {ceiling['optimal']:.3f} |"
        )
    for split in SPLITS:
        tasks = summary["tasks"][split]
        left_out = f", {len(tasks['left_out'])} left out (optimum = uniform)" if tasks["left_out"] else ""
        lines += [
            "",
            f"## {'Training' if split == 'train' else 'Held-out'} seeds",
            "",
            f"{len(tasks['seeds'])} task seeds{left_out}.",
            "",
            "| agent | runs | IQM normalized [95% CI] | P(> uniform) [95% CI] | P(> best-fixed) [95% CI] "
            "| normalized mean return | return |",
            "|---|---|---|---|---|---|---|",
        ]
        for agent, stats in summary[split].items():
            improvement = stats["p_improvement"]
            lines.append(
                f"| {agent} | {stats['return']['n']} | {_range(stats['iqm'])} | "
                f"{_range(improvement['uniform'])} | {_range(improvement['best-fixed'])} | "
                f"{_cell(stats['normalized'])} | {_cell(stats['return'])} |"
            )
        lines += ["", f"![performance profiles](profile_{split}.png) ![IQM](iqm_{split}.png)"]
    lines += [
        "",
        "## Dataset worth per expert query",
        "",
        "What the evaluation episodes of a split would give as a dataset, per request to the expert "
        "(the rewriting LLM) they cost. Every agent plays one episode of "
        f"{results['depth']} steps from every seed of the split, so every agent spends the same "
        "expert queries Q (the sum over its steps of the pack nodes' recorded `queries.expert`, "
        "what each live step cost); the table shows Q so that this can be checked.",
        "",
        "- **kept**: rewrites the reviewer rewarded (Not Equal), valid, without leaked prompt words;",
        "- **distinct kept** K: the kept rewrites in seed then step order, each dropped when its cosine "
        f"similarity (pack encoder embeddings) to one kept before it is ≥ {summary['near_duplicate_cosine']} "
        "(`teams-rl generate`'s default near-duplicate threshold);",
        "- **K / Q**: distinct kept instructions per expert query;",
        "- **Vendi / Q**: the Vendi score of the K distinct kept (the effective number of distinct "
        "instructions: exp of the entropy of the eigenvalues of their cosine-similarity matrix / K) "
        "per expert query;",
        "- **Vendi of N random kept**: the Vendi score of equal-sized random subsets (mean of 200) of "
        "all kept rewrites, N the fewest any run kept: diversity at equal set size.",
        "",
        "Mean ± 95% CI over runs (Student's t).",
    ]
    for split in SPLITS:
        size = summary["diversity_subsample_size"][split]
        lines += [
            "",
            f"### {'Training' if split == 'train' else 'Held-out'} seeds",
            "",
            f"| agent | Q | kept | distinct kept K | K / Q | Vendi of K | Vendi / Q | Vendi of {size} random kept |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for agent, stats in summary[split].items():
            lines.append(
                f"| {agent} | {_cell(stats['expert_queries'], 0)} | {_cell(stats['kept'], 1)} | "
                f"{_cell(stats['distinct_kept'], 1)} | {_cell(stats['distinct_kept_per_query'], 3)} | "
                f"{_cell(stats['vendi_kept'])} | {_cell(stats['vendi_per_query'], 3)} | "
                f"{_cell(stats['vendi_subsampled'])} |"
            )
    lines += [
        "",
        "## What the reward pays for",
        "",
        "From `teams-rl audit` on the same pack and reward; seeded samples of rewarded rewrites per "
        "action are in [audit/audit.md](audit/audit.md). Read them before trusting a score above.",
        "",
        *rates_table(dict(audit)),
        "",
        *junk_tables(audit["junk"]),
    ]
    lines += [
        "",
        "![training curves](curves.png)",
        "",
        "![normalized mean returns](scores.png)",
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
    if summary["curves"]:  # a bench of policies only has no training curve
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
    plot_rliable(out, summary)


def plot_rliable(out: Path, summary: Mapping[str, Any]) -> None:
    """Per split: the performance profiles of the per-seed normalized scores with 95% bands
    (``profile_SPLIT.png``) and each agent's IQM with its 95% interval (``iqm_SPLIT.png``)."""
    from agents.plots import plot_interval_estimates, plot_performance_profiles
    from agents.rl_statistics import Interval, performance_profile_ci

    for split in SPLITS:
        scores = {
            agent: np.array(rows, dtype=float)
            for agent, rows in summary["task_scores"][split].items()
            if np.size(rows)
        }
        name = "training" if split == "train" else "held-out"
        if scores:
            lowest = min(0.0, min(float(matrix.min()) for matrix in scores.values()))
            taus = np.linspace(lowest, 1.0, PROFILE_POINTS)
            bands = performance_profile_ci(scores, taus, reps=summary.get("bootstrap_reps", BOOTSTRAP_REPS))
            plot_performance_profiles(
                bands, taus, out / f"profile_{split}.png", f"Score distributions on the {name} seeds"
            )
        intervals = {
            agent: Interval(stats["iqm"]["point"], stats["iqm"]["low"], stats["iqm"]["high"])
            for agent, stats in summary[split].items()
            if not np.isnan(stats["iqm"]["point"])
        }
        if intervals:
            plot_interval_estimates(
                intervals,
                out / f"iqm_{split}.png",
                f"IQM of per-seed normalized scores, {name} seeds (95% CI)",
            )


def terminal_summary(results: Mapping[str, Any]) -> list[str]:
    """What ``bench --pack`` prints: the headline, then each agent's held-out IQM with its interval
    and P(> best-fixed); the report holds the rest."""
    lines = [results["headline"], "held-out seeds: IQM normalized [95% CI], P(> best-fixed) [95% CI]"]
    for agent, stats in results["summary"]["heldout"].items():
        lines.append(
            f"  {agent:<24} {_range(stats['iqm'])}  {_range(stats['p_improvement']['best-fixed'])}"
            f"  ({stats['return']['n']} runs)"
        )
    return lines


def headline_agent(runs: Sequence[PackRun]) -> str:
    """The agent the headline is about: the first learner of the bench, else its first text
    baseline, else ``trpo`` (whose absence the headline then states)."""
    learners = [run.agent for run in runs if run.algo]
    texts = [run.agent for run in runs if run.agent in TEXT_BASELINES]
    return (learners or texts or ["trpo"])[0]


def _complete(result: Mapping[str, Any]) -> bool:
    """Whether a journaled result has every field the summary needs (``RESULT_FIELDS``)."""
    return all(field in result.get(split, {}) for split in SPLITS for field in RESULT_FIELDS)


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
        "runs": runs,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    # What the reward pays for goes with every result on it: a score is only as good as its reward.
    audit = audit_pack(pack, reward=config.reward)
    write_audit(out / "audit", audit)
    write_report(out, results, audit)
    plot(out, summary, config.budget)
    return out
