"""``teams-rl generate``: a policy drives the expert over each seed instruction (up to ``max_steps``
rewrites, each of the previous result), failed evolutions are eliminated, near-duplicates dropped,
and the expert (or a separate responder) answers every instruction that is kept.

What happens to a failed step: the trajectory goes on. With ``on_failure="revert"`` (the default
here) the next rewrite starts again from the last instruction that was not eliminated, so one bad
rewrite does not spoil the rest; with ``"keep"`` it starts from the failed rewrite, as in training.

Outputs in ``--out``:

- ``dataset.jsonl``: one kept item per line: ``messages`` (TRL's conversational format),
  ``instruction``, ``input``, ``output`` and provenance (seed id and text, step, action, reviewer
  probability, backends, policy);
- ``rejects.jsonl``: eliminated items with the ``rule`` that removed them;
- ``stats.json`` and ``README.md`` (a data card): counts, eliminations by rule, queries and tokens
  per role, cache hits, expert queries per kept item, wall time;
- ``progress.jsonl`` (the journal) and ``generation.json`` (the options that shape the content).

Resuming: every finished batch of seeds is one journal line, written in one flushed write; the
dataset and rejects files are rebuilt from the journal when a run starts. Killing the process at
any point and running the same command again continues with the first unfinished batch, with no
item lost or repeated.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from teams_env.encoder import SentenceEncoder, shared_encoder
from teams_env.engine import normalise
from teams_env.llm.accounting import QueryLedger, RoleUsage
from teams_env.llm.base import GenerationParams, LLMBackend
from teams_env.llm.cache import open_cache
from teams_env.llm.registry import shared_backend, without_adapter
from teams_env.llm.service import LLMService
from teams_env.reward.elimination import Rule, answer_rule
from teams_env.reward.reviewer import NOT_EQUAL
from teams_env.seeds import BAD_ROWS, SeedInstruction, load_seeds
from teams_rl.agents.commands import GenerateConfig
from teams_rl.agents.episodes import Trajectory, dynamics_line, env_kwargs_for, rollout
from teams_rl.agents.generation.action_override import action_override
from teams_rl.agents.generation.data_card import write_data_card
from teams_rl.agents.journal import Journal, append_jsonl, write_jsonl_atomically
from teams_rl.agents.policy import check_agent_spec

logger = logging.getLogger(__name__)

NEAR_DUPLICATE = "near_duplicate"
UNRESUMABLE = ("limit",)
"""Options that may change between a run and its resumption (a larger limit extends the dataset)."""


def rewrite_rule(seed: SeedInstruction, info: dict[str, Any]) -> tuple[str | None, str]:
    """The elimination rule a step's rewrite breaks (and why), or (None, "") if it breaks none; of
    the rules that need no answer: 1 (no new information), 4 (leaked prompt words), 5 (not a valid
    instruction), 6 (not GOOD for its action, where the judge has a GOOD head). A rewrite that
    breaks none is one the env paid for."""
    if info["rewrite_failure"] is not None:
        return Rule.NO_NEW_INFORMATION.value, info["rewrite_failure"]
    if info["leaked_phrase"]:
        return Rule.LEAKED_PROMPT_WORDS.value, info["leaked_phrase"]
    if not info["valid"]:
        p_valid = f", P(valid)={info['p_valid']:.2f}" if info["p_valid"] is not None else ""
        return Rule.INVALID_INSTRUCTION.value, f"{info['invalid_reason']}{p_valid}"
    if info["verdict"] != NOT_EQUAL:
        return Rule.NO_NEW_INFORMATION.value, f"reviewer P(Not Equal)={info['p_not_equal']:.2f}"
    if info.get("good") is False:
        return Rule.NOT_GOOD.value, f"judge P(GOOD)={info['p_good']:.2f} for {info['action_name']}"
    if normalise(info["instruction"]) == normalise(seed.text):
        return Rule.NO_NEW_INFORMATION.value, "same as the seed"
    return None, ""


class NearDuplicates:
    """Embeddings of the kept instructions; a new one too close to any of them is a duplicate."""

    def __init__(self, encoder: SentenceEncoder, threshold: float) -> None:
        self.encoder = encoder
        self.threshold = threshold
        self.ids: list[str] = []
        self._vectors = np.zeros((64, encoder.dim), np.float32)  # grows by doubling

    def add(self, item_id: str, text: str) -> None:
        if len(self.ids) == len(self._vectors):
            self._vectors = np.vstack([self._vectors, np.zeros_like(self._vectors)])
        self._vectors[len(self.ids)] = self.encoder.encode([text])[0]
        self.ids.append(item_id)

    def closest(self, text: str, also: Sequence[tuple[str, str]] = ()) -> str | None:
        """The id of a kept item (or of one of ``also``, (id, text) pairs) that ``text`` duplicates."""
        if self.threshold >= 1.0:
            return None
        ids = self.ids + [item_id for item_id, _ in also]
        if not ids:
            return None
        matrix = self._vectors[: len(self.ids)]
        if also:
            matrix = np.vstack([matrix, self.encoder.encode([t for _, t in also])])
        similarity = matrix @ self.encoder.encode([text])[0]
        best = int(np.argmax(similarity))
        return ids[best] if similarity[best] >= self.threshold else None


@dataclass
class _Outcome:
    seed: SeedInstruction
    kept: list[dict[str, Any]]
    rejected: list[dict[str, Any]]


def _backend_name(value: Any) -> str:
    return value.identity if isinstance(value, LLMBackend) else str(value)


def _manifest(config: GenerateConfig, env_kwargs: Mapping[str, Any], responder: LLMBackend) -> dict[str, Any]:
    """What shapes the dataset's content; a resumed run must match it."""
    return {
        "policy": config.policy,
        "seeds": config.seeds,
        "shuffle": config.shuffle,
        "seed": config.seed,
        "deterministic": config.deterministic,
        "n_envs": config.n_envs,  # the rollout's batches, hence their seeds, depend on it
        "force_actions": list(config.force_actions),
        "replace_actions": list(config.replace_actions),
        "dedup_threshold": config.dedup_threshold,
        "responder": responder.identity,
        "answer_max_new_tokens": config.answer_max_new_tokens,
        "env": {k: _backend_name(v) for k, v in sorted(env_kwargs.items()) if k not in ("cache", "ledger")},
    }


def _check_manifest(out: Path, manifest: dict[str, Any], journal: Journal) -> None:
    path = out / "generation.json"
    if path.is_file() and journal.records:
        previous = json.loads(path.read_text(encoding="utf-8"))
        for key in sorted(set(previous) | set(manifest)):
            if key not in UNRESUMABLE and previous.get(key) != manifest.get(key):
                raise ValueError(
                    f"{out} holds a dataset generated with other options ({key}: {previous.get(key)!r}, "
                    f"now {manifest.get(key)!r}); use another --out, or the same options to resume"
                )
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class Generator:
    """One generation run into one output directory."""

    def __init__(
        self,
        config: GenerateConfig,
        env_overrides: Mapping[str, Any] | None = None,
        responder: LLMBackend | None = None,
    ) -> None:
        self.config = config
        # A policy that can never load fails before any model loads or any folder is made (a
        # pipeline validates this config before the run it names exists, so it is checked here).
        check_agent_spec(config.policy)
        self.out = Path(config.out).expanduser()
        self.out.mkdir(parents=True, exist_ok=True)
        base = {**config.env_kwargs(), "action_type": config.action_type, **(env_overrides or {})}
        self.env_kwargs = env_kwargs_for(config.policy, base)
        expert = self.env_kwargs["expert"]
        expert = shared_backend(expert) if isinstance(expert, str) else expert
        reviewer = self.env_kwargs.get("reviewer") or without_adapter(expert)
        reviewer = shared_backend(reviewer) if isinstance(reviewer, str) else reviewer
        if responder is None:
            spec = config.responder or without_adapter(expert)
            responder = shared_backend(spec) if isinstance(spec, str) else spec
        self.ledger = QueryLedger()
        self.responder = LLMService(responder, "responder", self.ledger, open_cache(self.env_kwargs["cache"]))
        encoder = self.env_kwargs["encoder"]
        self.duplicates = NearDuplicates(
            shared_encoder(encoder) if isinstance(encoder, str) else encoder, config.dedup_threshold
        )
        self.journal = Journal(self.out / "progress.jsonl")
        _check_manifest(self.out, _manifest(config, self.env_kwargs, responder), self.journal)
        self.provenance = {
            "expert": expert.identity,
            "reviewer": reviewer.identity,
            "responder": responder.identity,
            "policy": config.policy,
        }

    # -- the run -------------------------------------------------------------------------
    def run(self) -> Path:
        from tqdm.auto import tqdm

        start = time.perf_counter()
        config = self.config
        seed_set = load_seeds(
            config.seeds,
            limit=config.limit or None,
            shuffle=config.shuffle,
            seed=config.seed,
            skip_bad_lines=config.skip_bad_lines,
        )
        bad_lines = sum(n for reason, n in seed_set.skipped.items() if reason in BAD_ROWS)
        if bad_lines:
            logger.warning(
                "%s: skipped %d bad line(s) (%s); first: %s",
                config.seeds,
                bad_lines,
                ", ".join(f"{reason} {n}" for reason, n in seed_set.skipped.items() if reason in BAD_ROWS),
                seed_set.problems[0],
            )
        done = {seed["seed_id"] for record in self.journal.records for seed in record["seeds"]}
        kept_rows, rejected_rows = self._rebuild_outputs()
        todo = [seed for seed in seed_set if seed.id not in done]
        if done:
            logger.info(
                "resuming %s: %d seeds done, %d to go", self.out, len(seed_set) - len(todo), len(todo)
            )
        max_steps = int(self.env_kwargs["max_steps"])
        override = action_override(config.force_actions, config.replace_actions, max_steps)
        # Counted in rewrites as the env steps them: a batch of seeds runs as one, so a bar of seeds
        # would sit at 0 until the whole batch is done.
        progress = tqdm(total=len(todo) * max_steps, unit="rewrite", desc="generate", disable=not todo)
        counted = self.ledger.snapshot()
        try:
            batches = (
                rollout(
                    config.policy,
                    todo,
                    # the seeds as loaded here: the env neither reads the file again nor meets its bad lines
                    {**self.env_kwargs, "seeds": [seed.text for seed in todo]},
                    n_envs=config.n_envs,
                    deterministic=config.deterministic,
                    seed=config.seed,
                    ledger=self.ledger,
                    override=override,
                    on_step=progress.update,
                )
                if todo
                else iter(())
            )
            for trajectories in batches:
                outcomes = self._judge(trajectories)
                now = self.ledger.snapshot()
                record = {
                    "seeds": [
                        {"seed_id": o.seed.id, "kept": o.kept, "rejected": o.rejected} for o in outcomes
                    ],
                    # What this batch asked of each role, answered by a model or by the cache: the
                    # same whether the run was interrupted or not, so the dataset's cost adds up.
                    "requests": _requests_between(counted, now),
                }
                counted = now
                self.journal.append(record)  # the commit point of this batch
                new_kept = [row for o in outcomes for row in o.kept]
                new_rejected = [row for o in outcomes for row in o.rejected]
                append_jsonl(self.out / "dataset.jsonl", new_kept)
                append_jsonl(self.out / "rejects.jsonl", new_rejected)
                kept_rows += new_kept
                rejected_rows += new_rejected
                progress.set_postfix(kept=len(kept_rows), rejected=len(rejected_rows), refresh=False)
        finally:
            progress.close()
            self._save_usage(time.perf_counter() - start)
        stats = self._stats(seed_set, kept_rows, rejected_rows)
        (self.out / "stats.json").write_text(
            json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        write_data_card(self.out, stats)
        if config.push_to_hub:
            _push_to_hub(self.out / "dataset.jsonl", config.push_to_hub)
        return self.out

    def _rebuild_outputs(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """dataset.jsonl and rejects.jsonl from the journal (they may lag it after a kill)."""
        kept = [row for record in self.journal.records for seed in record["seeds"] for row in seed["kept"]]
        rejected = [
            row for record in self.journal.records for seed in record["seeds"] for row in seed["rejected"]
        ]
        write_jsonl_atomically(self.out / "dataset.jsonl", kept)
        write_jsonl_atomically(self.out / "rejects.jsonl", rejected)
        for row in kept:
            self.duplicates.add(row["id"], row["instruction"])
        return kept, rejected

    # -- elimination ---------------------------------------------------------------------
    def _row(self, seed: SeedInstruction, step: int, info: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"{seed.id}#{step}",
            "instruction": info["instruction"],
            "input": "",
            "seed_id": seed.id,
            "seed_instruction": seed.text,
            "previous_instruction": info["previous_instruction"],
            "step": step,
            "action": info["action_name"],
            "reviewer_p_not_equal": info["p_not_equal"],
            **self.provenance,
        }

    def _judge(self, trajectories: Sequence[Trajectory]) -> list[_Outcome]:
        outcomes = [_Outcome(t.seed, [], []) for t in trajectories]
        pending = [
            (outcome, self._row(trajectory.seed, step, info), info)
            for outcome, trajectory in zip(outcomes, trajectories)
            for step, info in enumerate(trajectory.infos, start=1)
        ]
        batch_kept: list[tuple[str, str]] = []  # items of this batch kept so far
        # Rounds: a rewrite whose nearest twin is a candidate still waiting for its answer waits
        # for that answer (a candidate the answer rules reject is not kept, so it must not remove
        # its duplicates). The first pending item never waits, so every round makes progress.
        while pending:
            candidates: list[tuple[_Outcome, dict[str, Any]]] = []
            waiting: list[tuple[_Outcome, dict[str, Any], dict[str, Any]]] = []
            for outcome, row, info in pending:
                rule, detail = rewrite_rule(outcome.seed, info)
                if rule is None:
                    answering = [(r["id"], r["instruction"]) for _, r in candidates]
                    also = [(outcome.seed.id, outcome.seed.text), *batch_kept, *answering]
                    twin = self.duplicates.closest(row["instruction"], also)
                    if twin in {item_id for item_id, _ in answering}:
                        waiting.append((outcome, row, info))
                        continue
                    if twin is not None:
                        rule, detail = NEAR_DUPLICATE, f"similar to {twin}"
                if rule is not None:
                    outcome.rejected.append({**row, "rule": rule, "detail": detail})
                    continue
                candidates.append((outcome, row))
            answers = self.responder.generate(
                [[{"role": "user", "content": row["instruction"]}] for _, row in candidates],
                GenerationParams(max_new_tokens=self.config.answer_max_new_tokens),
            )
            for (outcome, row), answer in zip(candidates, answers):
                text = answer.text.strip()
                rule = answer_rule(text)
                if rule is not None:
                    outcome.rejected.append({**row, "rule": rule.value, "detail": "", "output": text})
                    continue
                messages = [
                    {"role": "user", "content": row["instruction"]},
                    {"role": "assistant", "content": text},
                ]
                outcome.kept.append({"messages": messages, **row, "output": text})
                batch_kept.append((row["id"], row["instruction"]))
            pending = waiting
        for outcome in outcomes:
            outcome.kept.sort(key=lambda row: row["step"])  # a row that waited joins in its place
            outcome.rejected.sort(key=lambda row: row["step"])
            for row in outcome.kept:
                self.duplicates.add(row["id"], row["instruction"])
        return outcomes

    # -- reports -------------------------------------------------------------------------
    def _save_usage(self, seconds: float) -> None:
        """Add this run's queries and time to those of earlier runs into the same directory."""
        path = self.out / "usage.json"
        total = (
            json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"seconds": 0.0, "roles": {}}
        )
        total["seconds"] += seconds
        for role, usage in self.ledger.snapshot().items():
            merged = RoleUsage(**total["roles"].get(role, {}))
            merged.add(usage)
            total["roles"][role] = merged.__dict__
        total["runs"] = total.get("runs", 0) + 1
        path.write_text(json.dumps(total, indent=2) + "\n", encoding="utf-8")

    def _stats(
        self, seed_set: Any, kept: list[dict[str, Any]], rejected: list[dict[str, Any]]
    ) -> dict[str, Any]:
        usage = json.loads((self.out / "usage.json").read_text(encoding="utf-8"))
        roles = usage["roles"]
        done_seeds = {row["seed_id"] for row in kept + rejected}

        needed: Counter[str] = Counter()
        for record in self.journal.records:
            needed.update(record.get("requests", {}))
        if not all("requests" in record for record in self.journal.records):
            # A dataset journaled before per-batch requests were recorded: every run's requests.
            needed = Counter(
                {
                    role: int(usage.get("queries", 0) + usage.get("cache_hits", 0))
                    for role, usage in roles.items()
                }
            )

        def requests(role: str) -> int:
            return needed[role]

        # The paper counts the expert's queries for rewriting and for answering, per item kept.
        expert_work = requests("expert") + requests("responder")
        return {
            "seeds": {
                "loaded": len(seed_set),
                "done": len(done_seeds),
                "skipped_while_loading": dict(seed_set.skipped),
                "problems": seed_set.problems[:10],
            },
            "candidates": len(kept) + len(rejected),
            "kept": len(kept),
            "rejected": len(rejected),
            "rejected_by_rule": dict(Counter(row["rule"] for row in rejected).most_common()),
            "kept_by_action": dict(Counter(row["action"] for row in kept).most_common()),
            "kept_by_step": {str(k): v for k, v in sorted(Counter(row["step"] for row in kept).items())},
            "queries": roles,
            "requests_needed": dict(needed),
            "expert_queries_per_kept_item": expert_work / len(kept) if kept else None,
            "reviewer_queries_per_kept_item": requests("reviewer") / len(kept) if kept else None,
            "wall_seconds": usage["seconds"],
            "runs": usage["runs"],
            **self.provenance,
        }


def _requests_between(before: Mapping[str, RoleUsage], after: Mapping[str, RoleUsage]) -> dict[str, int]:
    """Requests per role (sent to a model or answered by the cache) between two ledger snapshots."""
    requests = {}
    for role, usage in after.items():
        earlier = before.get(role, RoleUsage())
        count = usage.queries + usage.cache_hits - earlier.queries - earlier.cache_hits
        if count:
            requests[role] = count
    return requests


def _push_to_hub(dataset_file: Path, repo_id: str) -> None:
    try:
        from datasets import load_dataset
    except ImportError as error:
        raise RuntimeError("--push-to-hub needs: pip install 'teams-rl[hub]'") from error
    load_dataset("json", data_files=str(dataset_file), split="train").push_to_hub(repo_id)


def generate(
    config: GenerateConfig,
    env_overrides: Mapping[str, Any] | None = None,
    responder: LLMBackend | None = None,
) -> Path:
    """Generate (or resume generating) a dataset; returns the output directory. ``env_overrides``
    and ``responder`` take objects (e.g. a scripted backend) that a config file cannot hold."""
    return Generator(config, env_overrides, responder).run()


def run(config: GenerateConfig) -> int:
    generator = Generator(config)  # checks the policy before anything loads
    print(f"{dynamics_line(config.policy, generator.env_kwargs)}, deterministic={config.deterministic}")
    out = generator.run()
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    print(f"{stats['kept']} items kept, {stats['rejected']} eliminated: {stats['rejected_by_rule']}")
    if stats["expert_queries_per_kept_item"] is not None:
        print(f"expert queries per kept item: {stats['expert_queries_per_kept_item']:.2f}")
    print(f"dataset: {out / 'dataset.jsonl'} (data card: {out / 'README.md'})")
    return 0
