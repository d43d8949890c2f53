"""Per-example loss of a causal LM: the mean negative log-likelihood of an example's scored tokens.

A chat is rendered with the model's chat template. ``answer`` scores the tokens of its last
assistant turn given everything before it (what SFT taught the model to produce); ``all`` scores
the whole rendered chat. A plain text is scored whole either way. Examples are truncated to
``max_length`` tokens from the start, as in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from teams_rl.finetune.records import Conversation, Example

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class ScoredTokens:
    ids: list[int]
    first_scored: int
    """Index of the first token whose log-likelihood counts (at least 1: the first token has no context)."""


def _chat_ids(tokenizer: PreTrainedTokenizerBase, conversation: Conversation, prompt: bool) -> list[int]:
    encoded = tokenizer.apply_chat_template(
        conversation, tokenize=True, add_generation_prompt=prompt, return_dict=True
    )
    return list(encoded["input_ids"])


def scored_tokens(
    tokenizer: PreTrainedTokenizerBase, example: Example, loss_on: str, max_length: int
) -> ScoredTokens:
    if isinstance(example, str):
        ids, first = list(tokenizer(example)["input_ids"]), 1
    else:
        if tokenizer.chat_template is None:
            raise ValueError("the model has no chat template: give plain-text rows ({'text': ...}) instead")
        last_answer = max(i for i, message in enumerate(example) if message["role"] == "assistant")
        ids = _chat_ids(tokenizer, example[: last_answer + 1], prompt=False)
        first = len(_chat_ids(tokenizer, example[:last_answer], prompt=True)) if loss_on == "answer" else 1
    ids = ids[:max_length]
    return ScoredTokens(ids=ids, first_scored=max(first, 1))


def example_losses(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    *,
    loss_on: str = "answer",
    max_length: int = 512,
    batch_size: int = 8,
) -> np.ndarray:
    """Mean token NLL of each example (nats), in input order."""
    import torch

    encoded = [scored_tokens(tokenizer, example, loss_on, max_length) for example in examples]
    for index, tokens in enumerate(encoded):
        if tokens.first_scored >= len(tokens.ids):
            raise ValueError(f"example {index}: nothing left to score within max_length={max_length} tokens")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    losses = np.empty(len(encoded))
    model.eval()
    for start in range(0, len(encoded), batch_size):
        batch = encoded[start : start + batch_size]
        width = max(len(tokens.ids) for tokens in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        scored = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens.ids)] = torch.tensor(tokens.ids)
            attention[row, : len(tokens.ids)] = 1
            scored[row, tokens.first_scored : len(tokens.ids)] = True
        with torch.no_grad():
            logits = model(input_ids=ids.to(model.device), attention_mask=attention.to(model.device)).logits
        # position t predicts token t + 1
        log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        targets = ids[:, 1:].to(model.device)
        token_nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        mask = scored[:, 1:].to(model.device)
        per_example = (token_nll * mask).sum(dim=1) / mask.sum(dim=1)
        losses[start : start + len(batch)] = per_example.cpu().numpy()
    return losses
