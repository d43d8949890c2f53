"""llama.cpp backend (llama-cpp-python) with true batched decoding and prefix reuse.

llama-cpp-python's high-level ``Llama`` decodes one sequence at a time. Here one llama.cpp
context holds ``max_batch`` sequences: prompts are prefilled together and each decoding step
advances every unfinished answer in one ``llama_decode`` call. Each sequence slot remembers the
tokens in its KV cache, and a new request goes to the free slot sharing its longest prefix, so
the long few-shot preambles of the rewrite and reviewer prompts are computed once, not per call.
There are twice as many slots as the batch size, so the expert's and the reviewer's batches
(which alternate) each keep their own prefixes warm.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from teams_env.dependencies import LLAMA_CPP_PYTHON_FLOOR, require
from teams_env.llm.base import (
    ChoiceScores,
    Completion,
    Conversation,
    GenerationParams,
    LLMBackend,
    LLMError,
    Params,
    per_request,
    split_prefill,
)
from teams_env.llm.identity import file_fingerprint, gguf_model_id
from teams_env.llm.llamacpp_build import extra_buffers_by_default
from teams_env.llm.sampling import choose_token, log_softmax

require("llama-cpp-python", LLAMA_CPP_PYTHON_FLOOR, "the llamacpp backend")

logger = logging.getLogger(__name__)

MIN_SHARED_COPY = 32
"""Copy another slot's prefix when it saves at least this many prompt tokens (a stream copy costs
about as much as computing a handful of tokens)."""

BLOCK = 32
"""``deterministic`` prefill computes a prompt in blocks of this many tokens at fixed positions
(0, 32, 64, ...), one sequence per ``llama_decode`` call: a token's numbers then never depend on
how its prompt was cut into chunks or what shared the chunk, and whole blocks computed that way
can be reused by any later prompt that starts with the same tokens."""

NO_EXTRA_BUFFERS_TAG = "noextrabufts"
"""Names, in the cache identity, answers computed with the weights in plain buffers."""

SPECIALIST_ADAPTER = Path(__file__).parent.parent / "data" / "specialist_expert.gguf"
"""The shipped specialist expert: a LoRA adapter of the embedded model (``teams-rl train-expert``)."""

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass
class _Slot:
    """One sequence of the shared context and the tokens its KV cache holds."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)
    last_used: int = 0
    canonical: int = 0
    """How many leading tokens were computed in whole ``BLOCK``s (``deterministic`` reuse only)."""


@dataclass
class _Entry:
    token: int
    seq_id: int
    pos: int
    want_logits: bool


class LlamaCppBackend(LLMBackend):
    """A GGUF chat model run by llama.cpp on the CPU (or GPU, with a CUDA build)."""

    kind = "llamacpp"
    default_lora = ""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        max_batch: int = 8,
        context_per_sequence: int = 2048,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        deterministic: bool = True,
        extra_buffers: bool | None = None,
        lora: str | None = None,
    ) -> None:
        """``deterministic`` (the default): a request's answer (text, log-probabilities, hidden
        states) does not depend on earlier requests or on what shared its batch. Two things made it
        depend on them, both measured on this CPU:

        - chunking: llama.cpp's numbers for a token depend on how its prompt was cut into chunks (a
          prompt prefilled beside a shorter one is split where the shorter one ends; hidden states
          moved by up to 0.5). So each prompt is prefilled alone in fixed ``BLOCK``s, reusing only
          whole blocks computed the same way;
        - flash attention: with it, a decoding step's rows depended on the batch (29 of 96 rewrites
          differed between one continuous batch of 16 and one request at a time, logits by up to
          0.8). Without it, 0 of 96 differed, at the same speed (34.0 vs 34.8 s). So it is off.

        Answers are still decoded together. ``deterministic=False`` packs the prompts into one chunk,
        reuses any cached prefix and lets llama.cpp choose flash attention; its log-probabilities
        move in the second or third digit with the history, and now and then a greedy token changes
        (measured: 2 or 3 of 8 rewrites after other traffic). Measured on the CPU build only: a GPU
        build's kernels may depend on the batch in other ways.

        ``extra_buffers``: load the weights into llama.cpp's extra buffer types (repacked layouts).
        ``None`` (the default) decides by the build: off where it has AMX kernels, whose repacked
        buffers segfault on the first decode (:mod:`teams_env.llm.llamacpp_build`), on elsewhere.

        ``lora``: a llama.cpp GGUF LoRA adapter file applied to the model, or ``bundled`` (the
        specialist expert's, shipped); not set: the class's ``default_lora`` (none here). The
        adapter's content is part of the model id, so answers cached without it, or with another
        adapter, are never served for it."""
        import llama_cpp
        from llama_cpp import _internals

        path = Path(model_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path} (backend '{self.kind}')")
        self._llama_cpp = llama_cpp
        self._path = path
        lora = self.default_lora if lora is None else lora
        adapter = (SPECIALIST_ADAPTER if lora == "bundled" else Path(lora).expanduser()) if lora else None
        if adapter is not None and not adapter.is_file():
            raise FileNotFoundError(
                f"LoRA adapter file not found: {adapter} (backend '{self.kind}', option lora)"
            )
        # The cache is keyed by the content of the weights and of the adapter.
        self._model_id = gguf_model_id(path, n_gpu_layers=n_gpu_layers) + (
            f"+lora={adapter.name}@{file_fingerprint(adapter)}" if adapter else ""
        )
        self.deterministic = deterministic
        self.max_batch = max_batch
        self.context_per_sequence = context_per_sequence
        self._lock = threading.Lock()

        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # llama.cpp logs every context build
        llama_cpp.llama_backend_init()
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = n_gpu_layers
        self.extra_buffers = extra_buffers_by_default() if extra_buffers is None else extra_buffers
        model_params.use_extra_bufts = self.extra_buffers
        self._model = _internals.LlamaModel(path_model=str(path), params=model_params, verbose=False)
        threads = n_threads or max(1, os.cpu_count() or 1)
        ctx_params = llama_cpp.llama_context_default_params()
        n_slots = 2 * self.max_batch
        ctx_params.n_ctx = n_slots * context_per_sequence
        ctx_params.n_batch = 512
        ctx_params.n_ubatch = 512
        ctx_params.n_seq_max = n_slots
        ctx_params.n_threads = threads
        ctx_params.n_threads_batch = threads
        # One KV stream per sequence: a unified cache changed log-probs by ~0.2 with the batch's
        # composition. Separate streams narrow that, but do not remove it (see ``deterministic``).
        ctx_params.kv_unified = False
        if deterministic:  # flash attention's decoding rows depended on the batch (see above)
            ctx_params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self._ctx = _internals.LlamaContext(model=self._model, params=ctx_params, verbose=False)
        if adapter:
            self._apply_adapter(adapter)
        self._n_batch = ctx_params.n_batch
        self._n_vocab = self._model.n_vocab()
        self._slots = [_Slot(seq_id=i) for i in range(n_slots)]
        self._uses = 0
        self._stop_tokens = {t for t in (self._model.token_eos(), self._model.token_eot()) if t >= 0}
        self._formatter = self._make_formatter()

    def _apply_adapter(self, adapter: Path) -> None:
        """Load the adapter and apply it to the context (llama.cpp frees it with the model)."""
        llama_cpp = self._llama_cpp
        loaded = llama_cpp.llama_adapter_lora_init(self._model.model, str(adapter).encode("utf-8"))
        if not loaded:
            raise ValueError(
                f"{adapter}: not a llama.cpp LoRA adapter for {self._path.name} (wrong file, another "
                "architecture or tensor shapes that do not fit)"
            )
        if _stores_floats(adapter):
            logger.warning(
                "%s stores float tensors: with it, llama.cpp's answers depend on which requests share "
                "a batch; teams_rl.finetune.lora_gguf.convert_adapter writes a Q5_1 copy that does not",
                adapter,
            )
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(loaded)
        scales = (ctypes.c_float * 1)(1.0)
        if llama_cpp.llama_set_adapters_lora(self._ctx.ctx, adapters, 1, scales) != 0:
            raise ValueError(f"{adapter}: llama.cpp could not apply this LoRA adapter")

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def identity(self) -> str:
        # Deterministic answers may differ from batched ones: they are not the same cache entries.
        # The computation is named in full: answers computed in other blocks (or, before blocks,
        # in one chunk, or with flash attention) differ, and a cache entry must never be served
        # for another computation. Plain buffers instead of repacked ones run other kernels.
        tags = [f"deterministic-blocks{BLOCK}-noflash"] if self.deterministic else []
        if not self.extra_buffers:
            tags.append(NO_EXTRA_BUFFERS_TAG)
        return super().identity + ("?" + "-".join(tags) if tags else "")

    # -- prompts -------------------------------------------------------------------------
    def _make_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        metadata = self._model.metadata()
        template = metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE

        def piece(token: int) -> str:
            return self._model.token_get_text(token) if token >= 0 else ""

        return Jinja2ChatFormatter(
            template=template,
            eos_token=piece(self._model.token_eos()),
            bos_token=piece(self._model.token_bos()),
            add_generation_prompt=True,
        )

    def render(self, conversation: Conversation) -> str:
        """The prompt text the model sees for a conversation: the assistant turn opened and, where
        the conversation ends with an assistant message, that message as the reply's beginning."""
        history, prefill = split_prefill(conversation)
        return self._formatter(messages=history).prompt + prefill

    def tokenize_prompt(self, conversation: Conversation) -> list[int]:
        return self._model.tokenize(self.render(conversation).encode("utf-8"), add_bos=False, special=True)

    # -- generation ----------------------------------------------------------------------
    def generate(self, conversations: Sequence[Conversation], params: Params) -> list[Completion]:
        """Continuous batching: up to ``max_batch`` answers are decoded together, and a finished
        one's place goes to the next waiting request at once (a batch does not wait for its
        longest answer)."""
        every = per_request(params, len(conversations))
        prompts = [self.tokenize_prompt(c) for c in conversations]
        for prompt, request in zip(prompts, every):
            self._check_room(len(prompt) + request.max_new_tokens)
        rngs = [np.random.default_rng(request.request_seed(c)) for c, request in zip(conversations, every)]
        answers: list[list[int]] = [[] for _ in prompts]
        finish = ["length"] * len(prompts)
        slots: dict[int, _Slot] = {}
        logits: dict[int, np.ndarray] = {}
        waiting = deque(self._admission_order(every))
        active: list[int] = []
        with self._lock:
            while waiting or active:
                if waiting and len(active) < self.max_batch:
                    admitted = [
                        waiting.popleft() for _ in range(min(self.max_batch - len(active), len(waiting)))
                    ]
                    chosen = self._assign_slots(
                        [prompts[i] for i in admitted], busy=[slots[i] for i in active]
                    )
                    rows = self._prefill(chosen, [prompts[i] for i in admitted])
                    for i, slot, row in zip(admitted, chosen, rows):
                        slots[i], logits[i] = slot, row
                    active += admitted
                entries: list[_Entry] = []
                still_active = []
                for i in active:
                    request = every[i]
                    token = choose_token(logits[i], answers[i], request, rngs[i])
                    if token in self._stop_tokens:
                        finish[i] = "stop"
                        continue
                    answers[i].append(token)
                    if request.stop and self._hits_stop(answers[i], request.stop):
                        finish[i] = "stop"
                        continue
                    if len(answers[i]) >= request.max_new_tokens:
                        continue
                    slot = slots[i]
                    entries.append(_Entry(token, slot.seq_id, len(slot.tokens), True))
                    slot.tokens.append(token)
                    still_active.append(i)
                active = still_active
                if entries:
                    for i, row in zip(active, self._decode(entries)):
                        logits[i] = row
        completions = []
        for i, answer in enumerate(answers):
            text = self._model.detokenize(answer).decode("utf-8", errors="replace")
            for stop in every[i].stop:
                text = text.split(stop, 1)[0]
            completions.append(Completion(text, len(prompts[i]), len(answer), finish[i]))
        return completions

    @staticmethod
    def _admission_order(every: Sequence[GenerationParams]) -> list[int]:
        """Requests that may run longest start first, so a batch's last steps are not one long
        answer decoded alone (in ``deterministic`` mode the order does not change any answer)."""
        return sorted(range(len(every)), key=lambda i: every[i].max_new_tokens, reverse=True)

    def _hits_stop(self, answer: list[int], stops: tuple[str, ...]) -> bool:
        tail = self._model.detokenize(answer[-16:]).decode("utf-8", errors="ignore")
        return any(stop in tail for stop in stops)

    # -- scoring -------------------------------------------------------------------------
    def score_choices(
        self, conversations: Sequence[Conversation], choices: Sequence[str]
    ) -> list[ChoiceScores]:
        choice_tokens = [
            self._model.tokenize(c.encode("utf-8"), add_bos=False, special=False) for c in choices
        ]
        if any(not tokens for tokens in choice_tokens):
            raise LLMError(f"cannot score an empty choice among {list(choices)!r}")
        results: list[ChoiceScores] = []
        with self._lock:
            for start in range(0, len(conversations), self.max_batch):
                batch = conversations[start : start + self.max_batch]
                results.extend(self._score_batch(batch, choice_tokens))
        return results

    def _score_batch(
        self, conversations: Sequence[Conversation], choice_tokens: list[list[int]]
    ) -> list[ChoiceScores]:
        prompts = [self.tokenize_prompt(c) for c in conversations]
        longest = max(len(t) for t in choice_tokens)
        for prompt in prompts:
            self._check_room(len(prompt) + longest)
        slots = self._assign_slots(prompts)
        # One pass over the prompts gives every choice's first token.
        first = [log_softmax(row) for row in self._prefill(slots, prompts)]
        scores = [[float(first[i][tokens[0]]) for tokens in choice_tokens] for i in range(len(prompts))]
        for k, tokens in enumerate(choice_tokens):
            if len(tokens) == 1:
                continue
            # The rest of a multi-token choice: feed it after each prompt, then drop it again.
            entries = [
                _Entry(token, slot.seq_id, len(prompt) + j, True)
                for slot, prompt in zip(slots, prompts)
                for j, token in enumerate(tokens[:-1])
            ]
            rows = self._decode(entries)
            per_prompt = len(tokens) - 1
            for i in range(len(prompts)):
                for j in range(per_prompt):
                    scores[i][k] += float(log_softmax(rows[i * per_prompt + j])[tokens[j + 1]])
            for slot, prompt in zip(slots, prompts):
                self._truncate(slot, len(prompt))
        return [ChoiceScores(logprobs=tuple(s), prompt_tokens=len(p)) for s, p in zip(scores, prompts)]

    # -- hidden states ---------------------------------------------------------------------
    def last_hidden_states(self, conversations: Sequence[Conversation]) -> list[np.ndarray]:
        results: list[np.ndarray] = []
        with self._lock:
            for start in range(0, len(conversations), self.max_batch):
                prompts = [self.tokenize_prompt(c) for c in conversations[start : start + self.max_batch]]
                for prompt in prompts:
                    self._check_room(len(prompt))
                slots = self._assign_slots(prompts)
                self._llama_cpp.llama_set_embeddings(self._ctx.ctx, True)
                try:
                    results.extend(self._prefill(slots, prompts, output="embeddings"))
                finally:
                    self._llama_cpp.llama_set_embeddings(self._ctx.ctx, False)
        return results

    # -- KV cache and decoding -----------------------------------------------------------
    def _check_room(self, needed: int) -> None:
        if needed > self.context_per_sequence:
            raise LLMError(
                f"request needs {needed} tokens but each sequence has {self.context_per_sequence} "
                f"(llamacpp context_per_sequence); shorten the instruction or raise the limit"
            )

    def _assign_slots(self, prompts: list[list[int]], busy: Sequence[_Slot] = ()) -> list[_Slot]:
        """Give each prompt the free slot (not in ``busy``) where it saves the most work: the tokens
        it can reuse, minus the cached tokens it would throw away (a warm preamble that another
        family of prompts will want again); ties go to the least recently used slot."""
        free = [slot for slot in self._slots if slot not in busy]
        chosen: list[_Slot] = []

        def value(slot: _Slot, prompt: list[int]) -> tuple[int, int]:
            shared = _common_prefix(slot.tokens, prompt)
            return 2 * shared - len(slot.tokens), -slot.last_used

        for prompt in prompts:
            best = max(free, key=lambda slot: value(slot, prompt))
            free.remove(best)
            self._uses += 1
            best.last_used = self._uses
            chosen.append(best)
        return chosen

    def _truncate(self, slot: _Slot, keep: int) -> None:
        """Drop the cached tokens of ``slot`` from position ``keep`` on."""
        self._llama_cpp.llama_memory_seq_rm(self._ctx.memory, slot.seq_id, keep, -1)
        del slot.tokens[keep:]
        slot.canonical = min(slot.canonical, keep)

    def _prefill(
        self, slots: list[_Slot], prompts: list[list[int]], output: str = "logits"
    ) -> list[np.ndarray]:
        """Bring each slot to its prompt, reusing cached prefixes; logits (or, with
        ``output="embeddings"``, final hidden states) at the last token of each prompt.

        A prompt reuses the longest prefix found in any slot: its own, or another slot's, copied
        over (a copy costs far less than computing a few hundred prompt tokens). ``valid`` holds, per
        slot, the tokens whose KV data will be in place when this batch is decoded (copies run
        first, in order), so a slot filled earlier in this batch can donate only its old prefix.
        """
        if self.deterministic:
            return [self._prefill_in_blocks(slot, prompt, output) for slot, prompt in zip(slots, prompts)]
        valid = {slot.seq_id: list(slot.tokens) for slot in self._slots}
        entries: list[_Entry] = []
        for slot, prompt in zip(slots, prompts):
            last = len(prompt) - 1  # at least the last prompt token is decoded: its logits are needed
            keep = min(_common_prefix(valid[slot.seq_id], prompt), last)
            donor = max(
                (other for other in self._slots if other is not slot),
                key=lambda other: _common_prefix(valid[other.seq_id], prompt),
            )
            shared = min(_common_prefix(valid[donor.seq_id], prompt), last)
            if shared >= keep + MIN_SHARED_COPY:
                self._copy_prefix(donor, slot, shared)
                keep = shared
            else:
                self._truncate(slot, keep)
            valid[slot.seq_id] = prompt[:keep]
            slot.tokens = list(prompt)
            entries += [
                _Entry(prompt[pos], slot.seq_id, pos, pos == last) for pos in range(keep, len(prompt))
            ]
        return self._decode(entries, output)

    def _prefill_in_blocks(self, slot: _Slot, prompt: list[int], output: str) -> np.ndarray:
        """``deterministic`` prefill of one prompt (see ``BLOCK``): the output row of its last token."""
        last = len(prompt) - 1

        def reusable(other: _Slot) -> int:  # whole canonical blocks it shares, leaving the last token
            shared = min(_common_prefix(other.tokens[: other.canonical], prompt), last)
            return shared - shared % BLOCK

        keep = reusable(slot)
        donor = max((other for other in self._slots if other is not slot), key=reusable)
        if reusable(donor) >= keep + MIN_SHARED_COPY:
            keep = reusable(donor)
            self._copy_prefix(donor, slot, keep)
        else:
            self._truncate(slot, keep)
        slot.tokens = list(prompt)
        slot.canonical = len(prompt) - len(prompt) % BLOCK
        rows: list[np.ndarray] = []
        for start in range(keep, len(prompt), BLOCK):
            block = range(start, min(start + BLOCK, len(prompt)))
            rows = self._decode([_Entry(prompt[pos], slot.seq_id, pos, pos == last) for pos in block], output)
        return rows[-1]

    def _copy_prefix(self, donor: _Slot, slot: _Slot, length: int) -> None:
        """The first ``length`` cached tokens of ``donor`` into ``slot``. Sequences live in separate
        KV streams, which llama.cpp copies whole before the next decode; the tail is then dropped."""
        memory = self._ctx.memory
        self._llama_cpp.llama_memory_seq_rm(memory, slot.seq_id, -1, -1)
        self._llama_cpp.llama_memory_seq_cp(memory, donor.seq_id, slot.seq_id, -1, -1)
        self._llama_cpp.llama_memory_seq_rm(memory, slot.seq_id, length, -1)
        slot.canonical = min(donor.canonical, length)

    def _decode(self, entries: list[_Entry], output: str = "logits") -> list[np.ndarray]:
        """Run the entries through the model in chunks; logits rows (or hidden states) for the
        flagged entries, in order."""
        read, width = (
            (self._llama_cpp.llama_get_embeddings_ith, self._model.n_embd())
            if output == "embeddings"
            else (self._llama_cpp.llama_get_logits_ith, self._n_vocab)
        )
        from llama_cpp import _internals

        rows: list[np.ndarray] = []
        batch = _internals.LlamaBatch(n_tokens=self._n_batch, embd=0, n_seq_max=1, verbose=False)
        try:
            raw = batch.batch
            for start in range(0, len(entries), self._n_batch):
                chunk = entries[start : start + self._n_batch]
                raw.n_tokens = len(chunk)
                for j, entry in enumerate(chunk):
                    raw.token[j] = entry.token
                    raw.pos[j] = entry.pos
                    raw.n_seq_id[j] = 1
                    raw.seq_id[j][0] = entry.seq_id
                    # With embeddings on llama.cpp outputs every token anyway (and warns if asked not to).
                    raw.logits[j] = entry.want_logits or output == "embeddings"
                code = self._llama_cpp.llama_decode(self._ctx.ctx, raw)
                if code != 0:
                    raise LLMError(f"llama_decode failed with code {code} (context full?)")
                for j, entry in enumerate(chunk):
                    if entry.want_logits:
                        pointer = read(self._ctx.ctx, j)
                        rows.append(np.ctypeslib.as_array(pointer, shape=(width,)).copy())
        finally:
            batch.close()
        return rows

    def close(self) -> None:
        with self._lock:
            self._ctx.close()
            self._model.close()


def _stores_floats(adapter: Path) -> bool:
    """The GGUF adapter stores float tensors: llama.cpp multiplies one token by a float matrix with
    other kernels than several, so the adapter's update, and then greedy tokens, move with the batch
    (teams_rl.finetune.lora_gguf says more)."""
    import gguf

    floats = {gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.BF16}
    return any(tensor.tensor_type in floats for tensor in gguf.GGUFReader(str(adapter)).tensors)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class SpecialistBackend(LlamaCppBackend):
    """The specialist expert: the embedded model with a LoRA adapter trained on demonstrations of the
    six rewrites (the shipped one unless ``lora`` names another), asked without demonstrations."""

    kind = "specialist"
    specialist = True
    default_lora = "bundled"

    @property
    def base_spec(self) -> str:
        """The spec of the same model without the adapter: the reviewer an env gives a specialist
        expert when none is named (the review head reads the base model's hidden states)."""
        from teams_env.llm.embedded import embedded_gguf_path

        return (
            "llamacpp" if self._path.resolve() == embedded_gguf_path().resolve() else f"llamacpp:{self._path}"
        )
