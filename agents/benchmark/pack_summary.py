"""The statistics of a pack bench, recomputed from its journaled runs: per split and agent, the IQM of
per-seed normalized scores with stratified bootstrap intervals, the probabilities of improvement
over uniform and best-fixed, mean returns, and what the kept rewrites are worth per expert query;
and the headline sentence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SPLITS = ("train", "heldout")
TEXT_BASELINES = ("supervised", "nearest-seed", "reward-model")
"""Policies fitted to the train seeds' optimum (:mod:`teams_rl.agents.baselines.text`): what reading the
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
    from teams_rl.agents.benchmark.statistics import (
        iqm,
        probability_of_improvement_ci,
        stratified_bootstrap_ci,
    )

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
    from teams_env.metrics import subsampled_vendi
    from teams_rl.agents.benchmark.statistics import mean_and_ci95

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


def interval_text(interval: Mapping[str, float], digits: int = 2) -> str:
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
                f"P({learner.upper()} > {name}) = {interval_text(improvement[name])}"
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
