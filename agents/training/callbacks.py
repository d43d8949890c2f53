"""What the instructor's training logs besides SB3's own numbers: episodic returns, the reviewer's
Not-Equal rate, and the LLM queries spent so far; plus one line per finished episode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from stable_baselines3.common.callbacks import BaseCallback

from teams_env.llm.accounting import QueryLedger
from teams_env.reward.reviewer import NOT_EQUAL


class InstructorMetricsCallback(BaseCallback):
    """``charts/episodic_return``, ``charts/episodic_length`` and ``charts/not_equal_rate`` are means
    over the steps since the last log dump; ``charts/expert_queries``, ``charts/reviewer_queries``
    (requests a model answered) and ``charts/cache_hits`` count from the start of the run. Each
    finished episode is appended to ``episodes_file``.

    Algorithms that step the environment outside SB3's rollout loop (ARS) pass no step infos to
    callbacks; for them only the query counts are logged here.
    """

    def __init__(self, ledger: QueryLedger, episodes_file: Path) -> None:
        super().__init__()
        self.ledger = ledger
        self.episodes_file = episodes_file
        self._actions: list[list[str]] = []
        self._not_equal: list[list[bool]] = []
        self._episodes: IO[str] | None = None

    def _on_training_start(self) -> None:
        n_envs = self.training_env.num_envs
        self._actions = [[] for _ in range(n_envs)]
        self._not_equal = [[] for _ in range(n_envs)]
        self._episodes = self.episodes_file.open("a", encoding="utf-8")

    def _on_step(self) -> bool:
        infos: list[dict[str, Any]] | None = self.locals.get("infos")
        for index, info in enumerate(infos or []):
            if "verdict" in info:
                not_equal = info["verdict"] == NOT_EQUAL
                self.logger.record_mean("charts/not_equal_rate", float(not_equal))
                self._actions[index].append(info["action_name"])
                self._not_equal[index].append(not_equal)
            if "episode" in info:
                self._finish_episode(index, info["episode"])
        return True

    def _finish_episode(self, index: int, episode: dict[str, float]) -> None:
        self.logger.record_mean("charts/episodic_return", float(episode["r"]))
        self.logger.record_mean("charts/episodic_length", float(episode["l"]))
        assert self._episodes is not None
        row = {
            "timestep": self.num_timesteps,
            "return": float(episode["r"]),
            "length": int(episode["l"]),
            "actions": self._actions[index],
            "not_equal": self._not_equal[index],
        }
        self._episodes.write(json.dumps(row) + "\n")
        self._actions[index], self._not_equal[index] = [], []

    def _on_rollout_end(self) -> None:
        self._record_queries()

    def _record_queries(self) -> None:
        expert, reviewer = self.ledger.usage("expert"), self.ledger.usage("reviewer")
        self.logger.record("charts/expert_queries", expert.queries)
        self.logger.record("charts/reviewer_queries", reviewer.queries)
        self.logger.record("charts/cache_hits", expert.cache_hits + reviewer.cache_hits)

    def _on_training_end(self) -> None:
        # SB3 dumps before each update, so the last update's losses would otherwise never be written.
        self._record_queries()
        self.logger.dump(self.num_timesteps)
        if self._episodes is not None:
            self._episodes.close()
