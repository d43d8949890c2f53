"""The layout of a training run directory, in one place for training, loading and evaluation::

runs/TeaMsInstruct-v0__trpo__0__1732262400/
    config.yaml         the full resolved TrainConfig (no secrets: API keys live in env vars)
    env_kwargs.json     the environment's keyword arguments, to rebuild it with the same spaces
    action_codec.json   the continuous action space's prototypes: loading decodes with these
    checkpoints/        model_<steps>_steps.zip (+ replay buffers of off-policy algorithms)
    final_model.zip     the policy at the end of training
    events.out.tfevents.*   TensorBoard: charts/, losses/, rollout/, time/
    metrics.jsonl       the same numbers, one JSON object per log dump
    episodes.jsonl      one line per finished training episode: return, actions, verdicts
    queries.json        expert/reviewer queries, cache hits and tokens (the ledger)
    reward_curve.png    episodic return against environment steps
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teams_env.json_files import read_json_object
from teams_env.options import load_yaml

CHECKPOINT_PATTERN = re.compile(r"^model_(\d+)_steps\.zip$")


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def env_kwargs_file(self) -> Path:
        return self.path / "env_kwargs.json"

    @property
    def codec_file(self) -> Path:
        return self.path / "action_codec.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def final_model(self) -> Path:
        return self.path / "final_model.zip"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def episodes_file(self) -> Path:
        return self.path / "episodes.jsonl"

    @property
    def queries_file(self) -> Path:
        return self.path / "queries.json"

    @property
    def reward_curve(self) -> Path:
        return self.path / "reward_curve.png"

    def checkpoint(self, steps: int) -> Path:
        return self.checkpoints / f"model_{steps}_steps.zip"

    def replay_buffer(self, steps: int) -> Path:
        # The name SB3's CheckpointCallback gives it (name_prefix "model").
        return self.checkpoints / f"model_replay_buffer_{steps}_steps.pkl"

    def latest_checkpoint(self) -> tuple[Path, int] | None:
        """(the checkpoint with the most steps, its steps), or None when there is none."""
        found = [
            (int(match.group(1)), file)
            for file in self.checkpoints.glob("model_*_steps.zip")
            if (match := CHECKPOINT_PATTERN.match(file.name))
        ]
        if not found:
            return None
        steps, file = max(found)
        return file, steps

    def is_run(self) -> bool:
        return self.config_file.is_file()

    def read_config(self) -> dict[str, Any]:
        return load_yaml(self.config_file)

    def read_env_kwargs(self) -> dict[str, Any]:
        return read_json_object(self.env_kwargs_file, f"the env options of training run {self.path}")


def run_dir_of(model_file: Path) -> RunDir | None:
    """The run a checkpoint belongs to: its folder or, for ``checkpoints/*.zip``, the folder above."""
    for folder in (model_file.parent, model_file.parent.parent):
        if RunDir(folder).is_run():
            return RunDir(folder)
    return None
