"""Recorded MDPs: a transition pack (every action sequence from some seeds to a depth, recorded once
with the real models), its embeddings, the recorder, the replay environment that serves it with no
LLM, its alternative rewards, and the exact optimum by dynamic programming."""

from teams_env.replay.env import DEFAULT_PACK, TeaMsInstructReplayEnv, pack_encoder_spec

__all__ = ["DEFAULT_PACK", "TeaMsInstructReplayEnv", "pack_encoder_spec"]
