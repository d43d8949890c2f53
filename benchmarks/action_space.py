"""Which action space learns best: the continuous space of encoded action prompts at several sizes
(``action_dim``), against the Discrete(6) twin. TRPO trains on the scripted novelty reviewer (a
rewrite is rewarded when its action is new in the trajectory; uniform random earns 3.99 of 6, the
best policy 6), so the comparison measures the learning problem, not LLM quality. Also: how evenly
an untrained policy's Gaussian actions spread over the six actions (entropy, bits; uniform 2.585).

    python -m benchmarks.action_space [--dims 2,3,5,16,384] [--seeds 0,1,2] [--steps 3072]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from benchmarks.common import Timer, markdown_table, write_result
from teams_env.action_codec import ActionCodec
from teams_env.encoder import shared_encoder
from teams_env.llm.scripted import ScriptedBackend, novelty_score
from teams_env.seeds import load_seeds
from teams_rl.agents.commands import TrainConfig
from teams_rl.agents.evaluation import evaluate_agent
from teams_rl.agents.training.train import train

HELD_OUT = 48


def untrained_entropy(dim: int, encoder: str, draws: int = 20_000) -> float:
    """Entropy (bits) of the actions decoded from N(0, I) vectors clipped to the Box, as an untrained
    SB3 Gaussian policy (log-std 0) emits them."""
    codec = ActionCodec.from_encoder(shared_encoder(encoder), dim)
    vectors = np.clip(np.random.default_rng(0).normal(size=(draws, dim)), -1, 1)
    counts = np.bincount([codec.decode(v) for v in vectors], minlength=6) / draws
    return float(-sum(p * math.log2(p) for p in counts if p > 0))


def learn(action_type: str, dim: int, seed: int, steps: int, encoder: str, folder: str) -> float:
    seeds = load_seeds().seeds
    env_kwargs = {
        "expert": ScriptedBackend(score=novelty_score),
        "encoder": encoder,
        "cache": None,
        "reviewer_threshold": 0.5,
        "action_dim": dim,
    }
    config = TrainConfig(
        encoder=encoder,
        action_type=action_type,
        action_dim=dim,
        total_timesteps=steps,
        n_envs=8,
        seed=seed,
        out=folder,
        run_name=f"{action_type}-{dim}-{seed}",
        checkpoint_freq=10**9,
        progress_bar=False,
    )
    run_dir = train(config, env_overrides={**env_kwargs, "seeds": [s.text for s in seeds[:-HELD_OUT]]})
    result = evaluate_agent(str(run_dir), seeds[-HELD_OUT:], env_kwargs, deterministic=True)
    return result.mean_return


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dims", default="2,3,5,16,384", help="continuous action sizes to compare")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=3072, help="training steps per run")
    parser.add_argument("--encoder", default="default", help="sentence encoder of the action prompts")
    args = parser.parse_args()
    dims = [int(d) for d in args.dims.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    arms = [("continuous", d) for d in dims] + [("discrete", dims[0])]
    rows, records = [], []
    with tempfile.TemporaryDirectory() as folder:
        for action_type, dim in arms:
            with Timer() as timer:
                returns = [learn(action_type, dim, s, args.steps, args.encoder, folder) for s in seeds]
            entropy = untrained_entropy(dim, args.encoder) if action_type == "continuous" else math.log2(6)
            label = f"Box({dim})" if action_type == "continuous" else "Discrete(6)"
            records.append(
                {
                    "action_space": label,
                    "returns": returns,
                    "untrained_entropy_bits": entropy,
                    "seconds": timer.seconds,
                }
            )
            rows.append(
                [
                    label,
                    f"{np.mean(returns):.2f} ± {np.std(returns):.2f}",
                    f"{entropy:.2f}",
                    f"{timer.seconds / len(seeds):.0f}",
                ]
            )
    table = markdown_table(
        [
            "action space",
            f"held-out return after {args.steps} steps (of 6)",
            "untrained entropy (bits)",
            "s per run",
        ],
        rows,
    )
    print(table)
    note = (
        f"TRPO (agents/training/hyperparams/trpo.yml), scripted novelty reviewer, {len(seeds)} seeds, mean ± sd; "
        f"uniform random earns 3.99, the best policy 6. Encoder: {args.encoder}."
    )
    write_result(
        "action_space",
        {"steps": args.steps, "seeds": seeds, "arms": records},
        f"# Action space\n\n{table}\n\n{note}\n",
    )


if __name__ == "__main__":
    main()
