"""The TeaMs-RL instruction-rewriting MDP as a Gymnasium environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from teams_env.actions import ACTION_NAMES
from teams_env.base_env import ActionType, InstructionEnvCore, ObservationMode
from teams_env.encoder import SentenceEncoder, shared_encoder
from teams_env.engine import Rewrite, RewriteEngine
from teams_env.env_config import ENV_DEFAULTS
from teams_env.llm.accounting import QueryLedger
from teams_env.llm.base import GenerationParams, LLMBackend
from teams_env.llm.cache import open_cache
from teams_env.llm.registry import shared_backend, without_adapter
from teams_env.llm.service import LLMService
from teams_env.reward.elimination import leaked_phrase
from teams_env.reward.formula import rewarded_in, step_reward
from teams_env.reward.reviewer import Judgement, Reviewer, ReviewMethod
from teams_env.seeds import SeedInstruction, load_seeds


@dataclass
class _Plan:
    """A step decided but not yet run: which action on which instruction."""

    action: int
    before: str


class TeaMsInstructEnv(InstructionEnvCore):
    """
    ## Description

    The instruction-rewriting MDP of TeaMs-RL (Gu, Knoll, Jin; arXiv 2403.08694). The agent is the
    *instructor*: at each step it picks one of six rewrites (breadth, add constraints, deepening,
    concretizing, increase reasoning steps, complicate input) that an *expert* LLM applies to the
    current instruction. A *reviewer* LLM then says whether the rewrite is "Equal" to the
    instruction before it or "Not Equal" (it added information). By default both are the embedded
    SmolLM2-135M-Instruct (4-bit GGUF, llama.cpp, no network, no GPU).

    ## Action Space

    ``TeaMsInstruct-v0``: ``Box(-1, 1, (action_dim,), float32)``. The six action prompts are encoded
    by the sentence encoder; a vector decodes to the action whose (centred, projected) embedding is
    nearest by cosine (:class:`~teams_env.action_codec.ActionCodec`).
    ``TeaMsInstructDiscrete-v0``: ``Discrete(6)``, in the order of ``ACTION_NAMES``.

    ## Observation Space

    Numbers only, never text (the texts are in ``info``).

    - ``observation="text"`` (default): ``Box(-1, 1, (encoder_dim + 6 * max_steps + 1,), float32)``,
      the unit-norm sentence embedding of the current instruction (at half precision, which a
      recorded pack stores exactly), the one-hot actions taken so far
      (one row of 6 per step, zeros for steps not taken) and the fraction of steps done.
    - ``observation="last_action"``: ``Box(0, 1, (6,), float32)``, a one-hot of the last action
      (zeros after reset): the text-blind observation of the authors' reference code.
    - ``observe_verdicts=True``: each step's row carries a seventh number, 1 when
      that step was rewarded (accepted) and 0 when not, so the policy can see that retrying a
      failed action from the same instruction is a certain 0; before the fraction of steps done
      comes the current instruction's length (words / 200, at most 1). Text:
      ``Box(-1, 1, (encoder_dim + 7 * max_steps + 2,))``; last action: ``Box(0, 1, (7,))``, the
      last verdict after the one-hot.

    ## Rewards

    1 when the reviewer says "Not Equal", the rewrite is a valid instruction and, where the review
    head has a GOOD head, it calls the rewrite GOOD for its action; else 0; minus ``leak_penalty``
    when the rewrite copies words of the rewrite prompt (Evol-Instruct's elimination rule 4). On
    the embedded default the reviewer is the 4-bit SmolLM2 read by a trained review head (one
    forward pass gives P(Not Equal), P(valid) and P(GOOD): the last fitted on the expert's own
    rewrites labelled blind by readers; how often what it pays is GOOD is measured in
    ``benchmarks/results/reward_reading.md``). A rewrite that is empty, a copy, cut off at the
    token limit, a loop of repeated words, leaks prompt words or breaks a judge rule (template
    reasoning steps, a reference to input it no longer carries) is invalid without asking the
    reviewer.

    ## Starting State

    An instruction drawn with ``self.np_random`` from the seed pool, or the one passed as
    ``reset(options={"instruction": ...})``.

    ## Episode End

    Terminated after ``max_steps`` rewrites (6, as in the paper). Never truncated.

    ## Info

    ``previous_instruction``, ``instruction`` (the rewrite), ``state_instruction`` (what the next
    step rewrites), ``action``, ``action_name``, ``verdict``,
    ``p_not_equal``, ``review_method``, ``valid``, ``invalid_reason``, ``p_valid``, ``p_good`` and
    ``good`` (the GOOD head's probability and call, None without one), ``leaked_phrase``,
    ``rewrite_failure``, ``rewrite_cut_off``,
    ``seed_id``, ``step`` and ``queries`` (expert and reviewer requests made so far this episode,
    whether a model or the cache answered them; ``env.unwrapped.ledger`` tells the two apart).

    ## Arguments

    Defaults of the options the command line also takes are those of
    :class:`~teams_env.env_config.EnvConfig` (one place; its help texts are the flags' help). "Not set"
    is ``None``.

    - ``expert`` / ``reviewer``: backend spec strings (see :mod:`teams_env.llm.registry`) or
      :class:`~teams_env.llm.base.LLMBackend` objects; ``reviewer=None`` (default): the expert's
      model (for a specialist expert, its base model without the adapter).
    - ``encoder``: ``"default"`` (all-MiniLM-L6-v2, embedded), a sentence-transformers name, or
      ``"hashing[:dim]"``.
    - ``seeds``: ``"bundled"``, a JSON/JSONL path, ``"hf:NAME"``, or a list of instruction strings.
    - ``action_type``: ``"continuous"`` (default) or ``"discrete"``; ``action_dim``: size of the Box.
    - ``observation``: ``"text"`` or ``"last_action"``; ``observe_verdicts``: add each step's verdict
      and the instruction's length (off in the registered -v0 ids); ``max_steps``: rewrites per episode.
    - ``leak_penalty``: subtracted from the reward when the rewrite leaks prompt words.
    - ``review_method``: ``"auto"`` (the review head where it was trained for the reviewer model,
      else label likelihood, falling back to a generated verdict), ``"head"``, ``"likelihood"``,
      ``"generate"`` or ``"embedding"`` (sentence-embedding distance, no LLM: a baseline);
      ``reviewer_threshold``: the P(Not Equal) from which a rewrite is rewarded, or ``"auto"``
      (the head's own, or calibrated once on anchor pairs with known answers);
      ``reviewer_head``: ``"bundled"``, an earlier shipped head (``"pairs-v1"``, what the shipped
      pack was recorded with) or a head file written by ``teams-rl train-reviewer``.
    - ``max_new_tokens``, ``temperature``, ``sample_seed`` (0): the expert's decoding (greedy by
      default).
    - ``max_instruction_chars`` (4000): longer instructions are refused with a clear error.
    - ``on_failure``: after a failed rewrite (Equal, or leaking prompt words), ``"revert"`` (the
      default) goes on from the instruction before it, so one bad step does not spoil the rest of
      the trajectory: the recorded packs, training, evaluation and generation all use it, one MDP
      everywhere. ``"keep"`` goes on from the failed rewrite (the paper's MDP).
    - ``cache``: ``"auto"`` (``$TEAMS_RL_CACHE`` or ``~/.cache/teams-rl/llm-cache.sqlite``), a path,
      ``"none"`` or ``None`` (no cache); ``ledger``: a shared :class:`~teams_env.llm.accounting.QueryLedger`.
    - ``render_mode``: ``"ansi"`` or ``None``.
    """

    def __init__(
        self,
        *,
        expert: str | LLMBackend = ENV_DEFAULTS.expert,
        reviewer: str | LLMBackend | None = ENV_DEFAULTS.reviewer,
        encoder: str | SentenceEncoder = ENV_DEFAULTS.encoder,
        seeds: str | os.PathLike[str] | list[str] = ENV_DEFAULTS.seeds,
        action_type: ActionType = "continuous",
        action_dim: int = ENV_DEFAULTS.action_dim,
        observation: ObservationMode = ENV_DEFAULTS.observation,
        observe_verdicts: bool = ENV_DEFAULTS.observe_verdicts,
        max_steps: int = ENV_DEFAULTS.max_steps,
        leak_penalty: float = ENV_DEFAULTS.leak_penalty,
        review_method: ReviewMethod = ENV_DEFAULTS.review_method,
        reviewer_threshold: float | str = ENV_DEFAULTS.reviewer_threshold,
        reviewer_head: str | os.PathLike[str] = ENV_DEFAULTS.reviewer_head,
        max_new_tokens: int = ENV_DEFAULTS.max_new_tokens,
        temperature: float = ENV_DEFAULTS.temperature,
        sample_seed: int = 0,
        max_instruction_chars: int = 4000,
        on_failure: Literal["keep", "revert"] = ENV_DEFAULTS.on_failure,
        cache: str | os.PathLike[str] | None = ENV_DEFAULTS.cache,
        ledger: QueryLedger | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        if on_failure not in ("keep", "revert"):
            raise ValueError(f"on_failure must be 'keep' or 'revert', got '{on_failure}'")
        self.max_steps = max_steps
        self.leak_penalty = float(leak_penalty)
        self.max_instruction_chars = max_instruction_chars
        self.on_failure = on_failure

        self.ledger = ledger if ledger is not None else QueryLedger()
        response_cache = open_cache(cache)
        expert_backend = shared_backend(expert) if isinstance(expert, str) else expert
        if reviewer is None:
            reviewer_backend = without_adapter(expert_backend)
        else:
            reviewer_backend = shared_backend(reviewer) if isinstance(reviewer, str) else reviewer
        self.encoder = shared_encoder(encoder) if isinstance(encoder, str) else encoder
        self.engine = RewriteEngine(
            LLMService(expert_backend, "expert", self.ledger, response_cache),
            Reviewer(
                LLMService(reviewer_backend, "reviewer", self.ledger, response_cache),
                method=review_method,
                threshold=reviewer_threshold,
                head=reviewer_head,
                encoder=self.encoder,
            ),
            GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=sample_seed),
        )

        if isinstance(seeds, list):
            self.seeds = [SeedInstruction(f"seed-{i}", text) for i, text in enumerate(seeds)]
        else:
            self.seeds = load_seeds(seeds).seeds
        for seed in self.seeds:
            self._check_instruction(seed.text, f"seed '{seed.id}'")

        self._set_up_spaces(action_type, action_dim, observation, render_mode, observe_verdicts)

        self._instruction = ""
        self._seed_id = ""
        self._step = 0
        self._history: list[int] = []
        self._accepted: list[bool] = []
        self._episode_queries = {"expert": 0, "reviewer": 0}
        self._last_info: dict[str, Any] = {}

    # -- Gymnasium API -------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        text = self._requested_instruction(options)
        if text is not None:
            self._check_instruction(text, "options['instruction']")
            self._instruction = text
            self._seed_id = str(options.get("seed_id", "custom"))
        else:
            chosen = self.seeds[int(self.np_random.integers(len(self.seeds)))]
            self._instruction, self._seed_id = chosen.text, chosen.id
        self._step = 0
        self._history = []
        self._accepted = []
        self._episode_queries = {"expert": 0, "reviewer": 0}
        self._last_info = {"instruction": self._instruction, "seed_id": self._seed_id, "step": 0}
        self.encoder.encode([self._instruction])
        return self._observation(), dict(self._last_info)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        plan = self.plan_step(action)
        rewrite = self.engine.rewrite([(plan.before, plan.action)])[0]
        judgement = self.engine.judge([(plan.before, rewrite)], [plan.action])[0]
        return self.finish_step(plan, rewrite, judgement)

    # -- the two halves of a step (the vector env batches the model calls between them) ---
    def plan_step(self, action: Any) -> _Plan:
        if self._step >= self.max_steps or not self._instruction:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        return _Plan(self.decode_action(action), self._instruction)

    def finish_step(
        self, plan: _Plan, rewrite: Rewrite, judgement: Judgement
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        leak = leaked_phrase(rewrite.text) if rewrite.failure is None else None
        reward = step_reward(judgement.rewarded, leak, self.leak_penalty)
        failed = not judgement.rewarded
        self._instruction = plan.before if failed and self.on_failure == "revert" else rewrite.text
        self._history.append(plan.action)
        self._step += 1
        terminated = self._step >= self.max_steps
        self._episode_queries["expert"] += 1
        self._episode_queries["reviewer"] += int(judgement.method in ("head", "likelihood", "generate"))
        self._last_info = {
            "seed_id": self._seed_id,
            "step": self._step,
            "action": plan.action,
            "action_name": ACTION_NAMES[plan.action],
            "previous_instruction": plan.before,
            "instruction": rewrite.text,
            "state_instruction": self._instruction,
            "verdict": judgement.verdict,
            "p_not_equal": judgement.p_not_equal,
            "review_method": judgement.method,
            "valid": judgement.valid,
            "invalid_reason": judgement.invalid_reason,
            "p_valid": judgement.p_valid,
            "p_good": judgement.p_good,
            "good": judgement.good,
            "leaked_phrase": leak,
            "rewrite_failure": rewrite.failure,
            "rewrite_cut_off": rewrite.cut_off,
            "queries": dict(self._episode_queries),
            "reward": reward,
        }
        self._accepted.append(rewarded_in(self._last_info))
        return self._observation(), reward, terminated, False, dict(self._last_info)

    # -- helpers -------------------------------------------------------------------------
    def _check_instruction(self, text: str, where: str) -> None:
        if not text.strip():
            raise ValueError(f"{where}: instruction is empty")
        if len(text) > self.max_instruction_chars:
            raise ValueError(
                f"{where}: instruction has {len(text)} characters; the limit is "
                f"{self.max_instruction_chars} (max_instruction_chars)"
            )
