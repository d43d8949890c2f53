"""transformers backend: batched generation with left padding, batched choice scoring, optional
4-bit (NF4) weights through bitsandbytes."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from teams_env.dependencies import TRANSFORMERS_FLOOR, require
from teams_env.llm.base import (
    ChoiceScores,
    Completion,
    Conversation,
    GenerationParams,
    LLMBackend,
    Params,
    in_batches,
    per_request,
    split_prefill,
)
from teams_env.llm.identity import hf_model_id

require("transformers", TRANSFORMERS_FLOOR, "the hf backend")


class HFBackend(LLMBackend):
    """A causal LM from a local folder or the Hugging Face Hub, run by transformers."""

    kind = "hf"

    def __init__(
        self,
        model: str | Path,
        *,
        load_in_4bit: bool = False,
        device: str = "auto",
        max_batch: int = 8,
        dtype: str = "auto",
        trust_remote_code: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        if dtype == "auto":
            torch_dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        else:
            torch_dtype = getattr(torch, dtype)
        kwargs: dict = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
        if load_in_4bit:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch_dtype
            )
            kwargs["device_map"] = self.device
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
            self.model = AutoModelForCausalLM.from_pretrained(model, **kwargs)
        except OSError as error:
            raise FileNotFoundError(f"cannot load model '{model}' (backend 'hf'): {error}") from error
        if not load_in_4bit:
            self.model.to(self.device)
        self.model.eval()
        self.load_in_4bit = load_in_4bit
        dtype_name = str(torch_dtype).removeprefix("torch.")
        self._model_id = hf_model_id(model, dtype=dtype_name, load_in_4bit=load_in_4bit, device=self.device)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @property
    def model_id(self) -> str:
        return self._model_id

    def _prompt_ids(self, conversation: Conversation) -> list[int]:
        history, prefill = split_prefill(conversation)
        encoded = self.tokenizer.apply_chat_template(
            history, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        prefill_ids = self.tokenizer(prefill, add_special_tokens=False)["input_ids"] if prefill else []
        return list(encoded["input_ids"]) + list(prefill_ids)

    def _padded(self, rows: list[list[int]], side: str):
        torch = self._torch
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
            ids[i, span] = torch.tensor(row, dtype=torch.long)
            mask[i, span] = 1
        return ids.to(self.model.device), mask.to(self.model.device)

    def generate(self, conversations: Sequence[Conversation], params: Params) -> list[Completion]:
        every = per_request(params, len(conversations))
        # One transformers call decodes with one sampling setup: requests that differ in more than
        # their token limit and stops go in separate batches.
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(every):
            groups.setdefault((p.temperature, p.top_p, p.repetition_penalty, p.seed), []).append(i)
        results: dict[int, Completion] = {}
        with self._lock:
            for indices in groups.values():
                answers = in_batches(
                    [conversations[i] for i in indices],
                    [every[i] for i in indices],
                    self.max_batch,
                    self._generate_batch,
                )
                results.update(zip(indices, answers))
        return [results[i] for i in range(len(conversations))]

    def _generate_batch(
        self, conversations: Sequence[Conversation], every: list[GenerationParams]
    ) -> list[Completion]:
        from transformers import LogitsProcessorList

        torch = self._torch
        params = replace(every[0], max_new_tokens=max(p.max_new_tokens for p in every))
        prompts = [self._prompt_ids(c) for c in conversations]
        ids, mask = self._padded(prompts, side="left")
        sampling = params.temperature > 0
        if sampling:
            # One generator per batch: sampled answers depend on the batch's composition here.
            torch.manual_seed(params.request_seed([m for c in conversations for m in c]))
        stop_ids = [t for t in {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id} if t is not None]
        with torch.no_grad():
            output = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=params.max_new_tokens,
                do_sample=sampling,
                temperature=params.temperature if sampling else None,
                top_p=params.top_p if sampling else None,
                top_k=None,
                logits_processor=LogitsProcessorList(
                    [_AnswerRepetitionPenalty(ids.shape[1], params.repetition_penalty)]
                ),
                eos_token_id=stop_ids,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        completions = []
        for prompt, row, own in zip(prompts, output[:, ids.shape[1] :].tolist(), every):
            row = row[: own.max_new_tokens]
            length = next((i for i, t in enumerate(row) if t in stop_ids), len(row))
            text = self.tokenizer.decode(row[:length], skip_special_tokens=True)
            stopped = any(stop in text for stop in own.stop)
            for stop in own.stop:
                text = text.split(stop, 1)[0]
            finish = "stop" if stopped or length < len(row) or length < own.max_new_tokens else "length"
            completions.append(Completion(text, len(prompt), length, finish))
        return completions

    def score_choices(
        self, conversations: Sequence[Conversation], choices: Sequence[str]
    ) -> list[ChoiceScores]:
        torch = self._torch
        choice_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
        prompts = [self._prompt_ids(c) for c in conversations]
        pairs = [(i, k) for i in range(len(prompts)) for k in range(len(choices))]
        scores = [[0.0] * len(choices) for _ in prompts]
        # Left padding puts every choice at the end of its row, so the model computes logits for the
        # last few positions only: a full [rows, tokens, vocabulary] log-softmax would be gigabytes.
        keep = max(len(ids) for ids in choice_ids) + 1
        with self._lock, torch.no_grad():
            # Every (prompt, choice) sequence of a chunk goes through the model in one forward pass.
            for start in range(0, len(pairs), self.max_batch * len(choices)):
                chunk = pairs[start : start + self.max_batch * len(choices)]
                ids, mask = self._padded([prompts[i] + choice_ids[k] for i, k in chunk], side="left")
                logprobs = torch.log_softmax(self._last_logits(ids, mask, keep).float(), -1)
                for row, (i, k) in enumerate(chunk):
                    targets = choice_ids[k]
                    # logits at kept index j predict the token at kept index j + 1
                    positions = torch.arange(keep - 1 - len(targets), keep - 1)
                    picked = logprobs[row, positions, torch.tensor(targets)]
                    scores[i][k] = float(picked.sum())
        return [ChoiceScores(tuple(s), len(p)) for s, p in zip(scores, prompts)]

    def last_hidden_states(self, conversations: Sequence[Conversation]) -> list[Any]:
        torch = self._torch
        states: list[Any] = []
        with self._lock, torch.no_grad():
            for start in range(0, len(conversations), self.max_batch):
                rows = [self._prompt_ids(c) for c in conversations[start : start + self.max_batch]]
                ids, mask = self._padded(rows, side="left")
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                output = self.model(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=positions,
                    output_hidden_states=True,
                    logits_to_keep=1,
                )
                # The last entry is the final layer after the model's last norm; left padding puts
                # every row's last token at the end.
                states.extend(output.hidden_states[-1][:, -1].float().cpu().numpy())
        return states

    def _last_logits(self, ids: Any, mask: Any, keep: int) -> Any:
        """Logits of the last ``keep`` positions of left-padded rows (positions counted from each
        row's first real token, as if it were alone)."""
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        try:
            return self.model(
                input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep
            ).logits
        except TypeError:  # a model class without logits_to_keep
            return self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -keep:]

    def close(self) -> None:
        with self._lock:
            self.model = None  # type: ignore[assignment]


class _AnswerRepetitionPenalty:
    """CTRL-style repetition penalty over the generated tokens only (see sampling.penalize_repeats)."""

    def __init__(self, prompt_width: int, penalty: float) -> None:
        self.prompt_width = prompt_width
        self.penalty = penalty

    def __call__(self, input_ids, scores):
        generated = input_ids[:, self.prompt_width :]
        if self.penalty == 1.0 or generated.shape[1] == 0:
            return scores
        picked = scores.gather(1, generated)
        picked = picked.where(picked < 0, picked / self.penalty)
        picked = picked.where(picked >= 0, picked * self.penalty)
        return scores.scatter(1, generated, picked)
