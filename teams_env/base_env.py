"""What the live environment and its replay share: the spaces, decoding an action, the observation
and the text rendering. No LLM is imported here, so a replay env stays free of the model stack."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from teams_env.action_codec import ActionCodec
from teams_env.actions import ACTION_NAMES
from teams_env.encoder import SentenceEncoder
from teams_env.reward.formula import unpaid_reason

N_ACTIONS = len(ACTION_NAMES)
ObservationMode = Literal["text", "last_action"]
ActionType = Literal["continuous", "discrete"]
OBSERVATION_EMBEDDING_DTYPE = np.float16
"""The precision of the embedding in a text observation. Half precision is far finer than a policy
resolves, and it lets a pack store its embeddings in half the bytes and still give every env the
same observation, bit for bit (:mod:`teams_env.replay.embeddings`)."""


LENGTH_WORDS = 200
"""Instruction length in the observation: words / LENGTH_WORDS, at most 1 (a 20-word instruction is 0.1)."""


def instruction_length(text: str) -> float:
    """The current instruction's length as the observation carries it, in [0, 1]."""
    return min(len(text.split()), LENGTH_WORDS) / LENGTH_WORDS


class InstructionEnvCore(gym.Env[np.ndarray, Any]):
    """Spaces, action decoding, observation and rendering of the instruction-rewriting MDP.

    A subclass sets ``encoder`` and ``max_steps``, calls :meth:`_set_up_spaces`, and keeps the
    episode in ``_instruction``, ``_history`` (action indices so far), ``_accepted`` (whether each of
    those steps was rewarded), ``_seed_id`` and ``_last_info``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}
    encoder: SentenceEncoder
    max_steps: int
    _instruction: str
    _history: list[int]
    _accepted: list[bool]
    _seed_id: str
    _last_info: dict[str, Any]

    def _set_up_spaces(
        self,
        action_type: str,
        action_dim: int,
        observation: str,
        render_mode: str | None,
        observe_verdicts: bool = False,
    ) -> None:
        if action_type not in ("continuous", "discrete"):
            raise ValueError(f"action_type must be 'continuous' or 'discrete', got '{action_type}'")
        if observation not in ("text", "last_action"):
            raise ValueError(f"observation must be 'text' or 'last_action', got '{observation}'")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, got '{render_mode}'"
            )
        self.render_mode = render_mode
        self.action_type: ActionType = action_type  # type: ignore[assignment]
        self.observation_mode: ObservationMode = observation  # type: ignore[assignment]
        self.observe_verdicts = bool(observe_verdicts)
        self.action_names = ACTION_NAMES
        if action_type == "continuous":
            self.codec: ActionCodec | None = ActionCodec.from_encoder(self.encoder, action_dim)
            self.action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        else:
            self.codec = None
            self.action_space = spaces.Discrete(N_ACTIONS)
        verdict = int(self.observe_verdicts)  # one more number per step, and the length
        if observation == "text":
            size = self.encoder.dim + (N_ACTIONS + verdict) * self.max_steps + verdict + 1
            self.observation_space = spaces.Box(-1.0, 1.0, (size,), np.float32)
        else:
            self.observation_space = spaces.Box(0.0, 1.0, (N_ACTIONS + verdict,), np.float32)

    @staticmethod
    def _requested_instruction(options: dict[str, Any]) -> str | None:
        """``options["instruction"]``, stripped, when a reset asks for one (it must be a string)."""
        if "instruction" not in options:
            return None
        text = options["instruction"]
        if not isinstance(text, str):
            raise TypeError(f"options['instruction'] must be a string, got {type(text).__name__}")
        return text.strip()

    def decode_action(self, action: Any) -> int:
        if self.codec is not None:
            return self.codec.decode(np.asarray(action))
        index = int(np.asarray(action).reshape(()))
        if not 0 <= index < N_ACTIONS:
            raise ValueError(f"discrete action must be in 0..{N_ACTIONS - 1}, got {index}")
        return index

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        info = self._last_info
        if "action_name" not in info:
            return f"[{self._seed_id}] start: {self._instruction}\n"
        reason = unpaid_reason(info)
        return (
            f"[{self._seed_id}] step {info['step']}/{self.max_steps} {info['action_name']}: "
            f"reward {info['reward']:g}{f' ({reason})' if reason else ''}; "
            f"{info['verdict']} (P(Not Equal)={info['p_not_equal']:.2f})\n"
            f"  before: {info['previous_instruction']}\n  after:  {info['instruction']}\n"
        )

    def _observation(self) -> np.ndarray:
        verdict = int(self.observe_verdicts)
        if self.observation_mode == "last_action":
            obs = np.zeros(N_ACTIONS + verdict, np.float32)
            if self._history:
                obs[self._history[-1]] = 1.0
                if verdict:
                    obs[N_ACTIONS] = float(self._accepted[-1])
            return obs
        history = np.zeros((self.max_steps, N_ACTIONS + verdict), np.float32)
        for step, action in enumerate(self._history):
            history[step, action] = 1.0
            if verdict:
                history[step, N_ACTIONS] = float(self._accepted[step])
        length = [instruction_length(self._instruction)] if verdict else []
        progress = [len(self._history) / self.max_steps]
        return np.concatenate([self._embedding(), history.ravel(), length, progress]).astype(np.float32)

    def _embedding(self) -> np.ndarray:
        """The current instruction's embedding at :data:`OBSERVATION_EMBEDDING_DTYPE` (a replay env
        looks it up in its pack instead of running the encoder)."""
        return self.encoder.encode([self._instruction])[0].astype(OBSERVATION_EMBEDDING_DTYPE)

    @property
    def instruction(self) -> str:
        """The current instruction text."""
        return self._instruction
