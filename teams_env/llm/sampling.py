"""Next-token choice from a logits vector, shared by the backends that decode token by token."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from teams_env.llm.base import GenerationParams


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - float(np.max(logits))
    return shifted - np.log(np.exp(shifted).sum())


def penalize_repeats(logits: np.ndarray, generated: Sequence[int], penalty: float) -> np.ndarray:
    """CTRL-style repetition penalty over the tokens of this answer only.

    The prompt is left alone on purpose: a rewrite must be free to reuse the instruction's words.
    """
    if penalty == 1.0 or not generated:
        return logits
    logits = logits.copy()
    seen = np.fromiter(set(generated), dtype=np.int64)
    values = logits[seen]
    logits[seen] = np.where(values > 0, values / penalty, values * penalty)
    return logits


def choose_token(
    logits: np.ndarray, generated: Sequence[int], params: GenerationParams, rng: np.random.Generator
) -> int:
    """Greedy at temperature 0, else temperature plus nucleus (top-p) sampling."""
    logits = penalize_repeats(logits, generated, params.repetition_penalty)
    if params.temperature <= 0.0:
        return int(np.argmax(logits))
    probs = np.exp(log_softmax(logits / params.temperature))
    if params.top_p < 1.0:
        order = np.argsort(-probs)
        keep = np.cumsum(probs[order]) - probs[order] < params.top_p
        mask = np.zeros_like(probs, dtype=bool)
        mask[order[keep]] = True
        probs = np.where(mask, probs, 0.0)
        probs /= probs.sum()
    return int(rng.choice(probs.size, p=probs))
