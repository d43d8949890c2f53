"""Functions that tests run in a child process (``run_isolated`` in conftest.py): each could die
natively, and a crash must fail one test, not end the whole pytest run."""

from __future__ import annotations

import ctypes
import json


def load_and_answer(extra_buffers: str) -> str:
    """Load the real embedded model through the llamacpp backend (``extra_buffers``: "default",
    "on" or "off"), answer one request, and report the buffers and cache identity it used."""
    from teams_env.llm.base import GenerationParams
    from teams_env.llm.embedded import embedded_gguf_path
    from teams_env.llm.llamacpp import NO_EXTRA_BUFFERS_TAG, LlamaCppBackend

    choice = {"default": None, "on": True, "off": False}[extra_buffers]
    backend = LlamaCppBackend(
        embedded_gguf_path(), max_batch=1, context_per_sequence=512, extra_buffers=choice
    )
    try:
        answer = backend.generate(
            [[{"role": "user", "content": "Name a fruit."}]], GenerationParams(max_new_tokens=8)
        )
        return json.dumps(
            {
                "extra_buffers": backend.extra_buffers,
                "tagged_plain": backend.identity.endswith(NO_EXTRA_BUFFERS_TAG),
                "answer": answer[0].text,
            }
        )
    finally:
        backend.close()


def segfault() -> str:
    ctypes.string_at(0)  # reads address 0: the child dies with SIGSEGV, as llama.cpp does on AMX
    return "unreachable"
