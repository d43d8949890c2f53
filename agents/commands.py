"""Options of ``teams-rl train`` and ``teams-rl evaluate-policy`` (light: the CLI imports this for
every command, so nothing heavy is imported here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from teams_env.env_config import ENV_DEFAULTS, EnvConfig, deterministic_option, env_option
from teams_env.options import option
from teams_env.replay.rewards import REWARD_NAMES

ACTION_TYPE_CHOICES = ("auto", "continuous", "discrete")
VARIANTS = ("discrete", "last_action")
"""Bench variants of the first algorithm: its Discrete twin, and the authors' one-hot observation."""

SKIP_BAD_LINES_HELP = (
    "skip seed-file lines that are not JSON objects with an 'instruction' text (and say how many) "
    "instead of stopping at the first"
)


def check_pack(spec: str) -> None:
    """A pack named by ``--pack`` (a directory, or a shipped pack such as ``default``) exists and
    has a manifest: checked before any model or policy loads."""
    from teams_env.replay.pack import PackError, read_manifest

    try:
        read_manifest(spec)
    except PackError as error:
        raise ValueError(f"--pack: {error}") from None


def check_seed_file(seeds: str, skip_bad_lines: bool) -> None:
    """Read a local seed file now (it is cheap), so a bad line stops the command before any model
    loads and before an output folder is made; hub datasets are read when they are used."""
    from teams_env.seeds import HF_PREFIX, load_seeds

    if not seeds.startswith(HF_PREFIX):
        load_seeds(seeds, skip_bad_lines=skip_bad_lines)


@dataclass
class TrainConfig(EnvConfig):
    algo: str = option(
        "trpo",
        "RL algorithm: trpo, ppo, a2c, ppo_lstm, ars (both action types); sac, td3, ddpg, tqc, crossq "
        "(continuous); dqn, qrdqn (discrete)",
    )
    action_type: str = option(
        "auto",
        "continuous (TeaMsInstruct-v0, encoded action prompts), discrete (TeaMsInstructDiscrete-v0), "
        "or auto: continuous when the algorithm supports it, else discrete",
    )
    pack: str = option(
        "",
        "train on a recorded transition pack (teams-rl record) instead of the live env: default (the "
        "shipped one) or a pack directory. The replay env of its train seeds has the live env's spaces "
        "(the pack's encoder; episodes of the pack's depth, or --max-steps if smaller), so the policy then "
        "drives the live expert (generate); at the end it is evaluated on the pack's held-out seeds "
        "(pack_eval.json in the run directory)",
    )
    total_timesteps: int = option(
        896, "environment steps to train for, one reviewer request each (896: the paper's reviewer budget)"
    )
    n_envs: int = option(8, "sub-environments stepped together; their LLM calls are batched")
    seed: int = option(0, "seed of the policy, the environments and the action sampling")
    hyperparams: dict[str, Any] = option(
        {},
        "hyperparameter overrides: KEY=VALUE,... (dotted keys reach into mappings, e.g. "
        "learning_rate=3e-4,n_steps=12,policy_kwargs.net_arch=[32,32]) or a YAML mapping",
    )
    hyperparams_file: str = option(
        "", "YAML file of hyperparameters used instead of the shipped agents/training/hyperparams/ALGO.yml"
    )
    out: str = option(
        "runs", "directory that holds the run directories (OUT/RUN_NAME)", deprecated=("runs_dir",)
    )
    run_name: str = option("", "name of the run directory; empty: {env}__{algo}__{seed}__{time}")
    resume: str = option(
        "",
        "a run directory to continue from its latest checkpoint; its saved options are used, and options "
        "given here that differ from their defaults override them (e.g. a larger --total-timesteps); "
        "hyperparameters cannot change (the checkpoint's model keeps its own)",
    )
    checkpoint_freq: int = option(
        192,
        "save a checkpoint every N environment steps (the end of training always saves one); with --pack, "
        "whose steps cost no LLM call, the default 192 means 5000",
    )
    progress_bar: bool = option(True, "show a progress bar (tqdm + rich)")
    device: str = option("auto", "torch device of the policy: auto, cpu, cuda, ...")
    torch_threads: int = option(
        1, "CPU threads for torch (a 64-unit policy runs fastest on one; 0: torch's default)"
    )

    def validate(self) -> None:
        from teams_rl.agents.training.algorithms import get_algorithm

        super().validate()
        get_algorithm(self.algo).resolve_action_type(self.action_type)
        if self.pack:
            check_pack(self.pack)
            if self.seeds != ENV_DEFAULTS.seeds:
                raise ValueError(
                    f"--seeds {self.seeds}: a pack brings its own seed instructions (its train split); "
                    "leave --seeds out with --pack (for several random seeds, run once per --seed, "
                    "or use teams-rl bench --pack)"
                )
        if self.torch_threads < 0:
            raise ValueError(f"torch_threads must not be negative, got {self.torch_threads}")
        for name in ("total_timesteps", "n_envs", "checkpoint_freq"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if "/" in self.run_name or self.run_name in (".", ".."):
            raise ValueError(f"run_name must be a plain directory name, got '{self.run_name}'")


@dataclass
class EvaluatePolicyConfig(EnvConfig):
    policy: str = option(
        "",
        "what to evaluate: a run directory, an SB3 .zip (ALGO:PATH.zip when no run config is next to it), "
        "uniform, random-continuous, reference, fixed:NAME,NAME,..., or module:Class / file.py:Class",
    )
    action_type: str = option(
        "continuous",
        "environment for baselines and custom agents: continuous or discrete (a run uses its own)",
    )
    limit: int = option(0, "evaluate on this many seed instructions (0: all of them after --offset)")
    offset: int = option(0, "skip this many seed instructions first, e.g. the ones the policy was trained on")
    n_envs: int = option(8, "episodes run side by side; their LLM calls are batched")
    seed: int = option(0, "seed of stochastic agents and of the environments")
    deterministic: bool = deterministic_option()
    skip_bad_lines: bool = option(False, SKIP_BAD_LINES_HELP)
    output: str = option("", "also write the report as JSON to this file")

    def validate(self) -> None:
        super().validate()
        if not self.policy:
            raise ValueError("--policy is required: a run directory, a .zip checkpoint or a baseline name")
        if self.action_type not in ("continuous", "discrete"):
            raise ValueError(f"action_type must be continuous or discrete, got '{self.action_type}'")
        for name in ("limit", "offset"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.n_envs < 1:
            raise ValueError(f"n_envs must be at least 1, got {self.n_envs}")
        check_seed_file(self.seeds, self.skip_bad_lines)


@dataclass
class GenerateConfig(EnvConfig):
    policy: str = option(
        "uniform",
        "who picks the rewrites: a training run directory, an SB3 .zip, a baseline (uniform = "
        "Evol-Instruct's random sampling, reference, fixed:NAME,...) or module:Class",
    )
    out: str = option("", "output directory (dataset.jsonl, rejects.jsonl, stats.json, README.md)")
    limit: int = option(0, "use only this many seed instructions (0: all)")
    shuffle: bool = option(False, "shuffle the seeds (with --seed) before --limit")
    seed: int = option(0, "seed of the shuffle, the environments and stochastic agents")
    action_type: str = option(
        "continuous",
        "environment for baselines and custom agents: continuous or discrete (a run uses its own)",
    )
    deterministic: bool = deterministic_option()
    skip_bad_lines: bool = option(False, SKIP_BAD_LINES_HELP)
    n_envs: int = option(8, "seeds rewritten side by side; their LLM calls are batched")
    force_actions: list[str] = option(
        [], "STEP:ACTION pairs that override the policy at those steps (1-based), e.g. 1:breadth,4:breadth"
    )
    replace_actions: list[str] = option(
        [], "FROM:TO pairs applied at the other steps, e.g. breadth:add_constraints (the authors' generation)"
    )
    dedup_threshold: float = option(
        0.95,
        "drop a rewrite whose embedding cosine similarity to a kept item or its seed reaches this (1: off)",
    )
    responder: str = option(
        "",
        "LLM backend that answers the kept instructions; empty: the expert's model (a specialist's without its adapter)",
    )
    answer_max_new_tokens: int = option(320, "token limit of each answer")
    push_to_hub: str = option("", "also push the dataset to this Hugging Face Hub repo id (needs a network)")

    def validate(self) -> None:
        super().validate()
        if not self.out:
            raise ValueError("--out is required: the directory to write the dataset to")
        if self.action_type not in ("continuous", "discrete"):
            raise ValueError(f"action_type must be continuous or discrete, got '{self.action_type}'")
        if self.limit < 0 or self.n_envs < 1 or self.answer_max_new_tokens < 1:
            raise ValueError("limit must be >= 0, n_envs and answer_max_new_tokens >= 1")
        if not 0.0 < self.dedup_threshold <= 1.0:
            raise ValueError(f"dedup_threshold must be in (0, 1], got {self.dedup_threshold}")
        check_seed_file(self.seeds, self.skip_bad_lines)


@dataclass
class BenchConfig(EnvConfig):
    algos: list[str] = option(
        ["trpo", "ppo", "uniform", "fixed"],
        "agents to compare: SB3 algorithms (trained), uniform, random-continuous, fixed (the authors' "
        "forced sequence), fixed:NAME,..., or module:Class / file.py:Class",
    )
    variants: list[str] = option(
        [],
        "also train the first algorithm with the Discrete twin (discrete) and/or with the authors' "
        "one-hot observation (last_action); only the variants named here run",
    )
    agents: list[dict[str, Any]] = option(
        [],
        "extra agents (YAML list of mappings: name, and algo to train or policy to run; optional "
        "action_type, observation, hyperparams)",
    )
    run_seeds: list[int] = option(
        [0, 1, 2], "random seeds; every agent is trained and evaluated once per seed (one run each)"
    )
    seeds: str = env_option(
        "seeds",
        "seed instructions (bundled, a JSON/JSONL file, or hf:DATASET): training draws from them, "
        "evaluation uses the held-out slice (not used with --pack: a pack has its own)",
        deprecated=("instructions",),
    )
    budget: int = option(
        192, "environment steps of training per learning agent (about one reviewer query each)"
    )
    n_envs: int = option(8, "sub-environments stepped together; their LLM calls are batched")
    eval_offset: int = option(100, "the held-out slice of --seeds starts here")
    eval_limit: int = option(16, "held-out seed instructions every agent is evaluated on")
    deterministic: bool = deterministic_option()
    out: str = option("bench", "output directory (benchmark.md, results.json, plots, runs/)")
    pack: str = option(
        "",
        "benchmark on a recorded pack (teams-rl record) instead of the live env: train on its train seeds, "
        "evaluate on train and held-out seeds against the exact optimum; agents: SB3 algorithms, uniform, "
        "fixed, best-fixed, optimal, and supervised / nearest-seed (fitted to the train seeds' optimum)",
    )
    reward: str = option("reviewer", f"reward of the replay env (--pack): {', '.join(REWARD_NAMES)}")
    jobs: int = option(1, "runs trained in parallel processes (--pack)")

    def validate(self) -> None:
        super().validate()
        if self.jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {self.jobs}")
        if self.budget < 1:
            raise ValueError(f"budget must be at least 1 environment step, got {self.budget}")
        if not self.run_seeds:
            raise ValueError("--run-seeds must name at least one random seed")
        if self.eval_limit < 2 or self.eval_offset < 0 or self.n_envs < 1:
            raise ValueError("eval_limit must be >= 2, eval_offset >= 0 and n_envs >= 1")
        if not self.algos and not self.agents:
            raise ValueError("name at least one agent in --algos or --agents")
        if self.pack:
            check_pack(self.pack)
