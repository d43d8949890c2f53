"""A vector environment for SB3 that batches the model calls of all its sub-environments.

Stepping N sub-environments makes one batched expert call, one batched reviewer call and one
batched encoder call, instead of N of each. Episodes reset automatically, as in any SB3 VecEnv
(the last observation is in ``infos[i]["terminal_observation"]``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from teams_env.env import TeaMsInstructEnv
from teams_env.llm.accounting import QueryLedger


class TeaMsInstructVecEnv(DummyVecEnv):
    """``n_envs`` :class:`TeaMsInstructEnv` sharing models, cache and one query ledger.

    Takes the same keyword arguments as :class:`TeaMsInstructEnv`. Wrap it in SB3's ``VecMonitor``
    for episode statistics.
    """

    envs: list[TeaMsInstructEnv]  # type: ignore[assignment]

    def __init__(self, n_envs: int = 8, **env_kwargs: Any) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs must be at least 1, got {n_envs}")
        self.ledger: QueryLedger = env_kwargs.pop("ledger", None) or QueryLedger()
        super().__init__([partial(TeaMsInstructEnv, ledger=self.ledger, **env_kwargs) for _ in range(n_envs)])
        self.engine = self.envs[0].engine

    def step_wait(self) -> VecEnvStepReturn:
        plans = [env.plan_step(action) for env, action in zip(self.envs, self.actions)]
        rewrites = self.engine.rewrite([(plan.before, plan.action) for plan in plans])
        judgements = self.engine.judge(
            [(plan.before, rewrite) for plan, rewrite in zip(plans, rewrites)],
            [plan.action for plan in plans],
        )
        self.envs[0].encoder.encode([rewrite.text for rewrite in rewrites])  # the observations hit this
        for index, env in enumerate(self.envs):
            obs, reward, terminated, truncated, info = env.finish_step(
                plans[index], rewrites[index], judgements[index]
            )
            self.buf_rews[index] = reward
            self.buf_dones[index] = terminated or truncated
            info["TimeLimit.truncated"] = truncated and not terminated
            if self.buf_dones[index]:
                info["terminal_observation"] = obs
                obs, self.reset_infos[index] = env.reset()
            self.buf_infos[index] = info
            self._save_obs(index, obs)
        return (
            self._obs_from_buf(),
            np.copy(self.buf_rews),
            np.copy(self.buf_dones),
            [dict(i) for i in self.buf_infos],
        )
