"""A backend is named by one string, on the command line and in YAML alike::

    llamacpp                                  the embedded SmolLM2-135M-Instruct GGUF (the default)
    llamacpp:/models/wizardlm-13b.Q4_K_M.gguf any GGUF file
    specialist                                the embedded model with the shipped specialist-expert adapter
    specialist?lora=runs/expert/expert-lora.gguf   with an adapter of your own (teams-rl train-expert)
    hf                                        the embedded model through transformers (float32)
    hf:WizardLM/WizardLM-13B-V1.2?load_in_4bit=true
    openai:gpt-4o-mini                        OpenAI (key from $OPENAI_API_KEY)
    openai:Qwen/Qwen2.5-7B-Instruct?base_url=http://127.0.0.1:8000/v1&concurrency=32
    scripted                                  deterministic stand-in for unit tests

Options after ``?`` are keyword arguments of the backend class (numbers and booleans parsed).
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from teams_env.llm.base import LLMBackend

DEFAULT_SPEC = "llamacpp"


@dataclass(frozen=True)
class BackendSpec:
    kind: str
    model: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return self.kind + (f":{self.model}" if self.model else "") + (f"?{query}" if query else "")


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in {"true", "yes", "on"}:
        return True
    if lowered in {"false", "no", "off"}:
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> BackendSpec:
    """Split ``kind[:model][?key=value&...]``; an unknown kind is a one-line error."""
    text = (spec or DEFAULT_SPEC).strip()
    head, _, query = text.partition("?")
    kind, _, model = head.partition(":")
    kind = kind.strip().lower()
    if kind not in _KINDS:
        raise ValueError(
            f"unknown LLM backend '{kind}' in '{spec}'; choose one of: {', '.join(sorted(_KINDS))}"
        )
    options = {key: _value(value) for key, value in parse_qsl(query, keep_blank_values=True)}
    return BackendSpec(kind=kind, model=model.strip(), options=options)


def _embedded_gguf() -> Any:
    from teams_env.llm.embedded import embedded_gguf_path

    return embedded_gguf_path()


def _embedded_hf() -> Any:
    from teams_env.llm.embedded import embedded_hf_dir

    return embedded_hf_dir()


@dataclass(frozen=True)
class _Kind:
    module: str
    cls: str
    default_model: Callable[[], Any] | None  # None: the class takes no model argument


_KINDS: dict[str, _Kind] = {
    "llamacpp": _Kind("teams_env.llm.llamacpp", "LlamaCppBackend", _embedded_gguf),
    "specialist": _Kind("teams_env.llm.llamacpp", "SpecialistBackend", _embedded_gguf),
    "hf": _Kind("teams_env.llm.hf", "HFBackend", _embedded_hf),
    "openai": _Kind("teams_env.llm.openai", "OpenAIBackend", lambda: ""),
    "scripted": _Kind("teams_env.llm.scripted", "ScriptedBackend", None),
}


def make_backend(spec: str) -> LLMBackend:
    """A new backend for a spec string; options are checked against the backend's arguments."""
    parsed = parse_spec(spec)
    kind = _KINDS[parsed.kind]
    cls = getattr(importlib.import_module(kind.module), kind.cls)
    allowed = [
        name
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(parsed.options) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown option '{unknown[0]}' for LLM backend '{parsed.kind}' in '{spec}'; "
            f"allowed: {', '.join(allowed)}"
        )
    if kind.default_model is None:
        return cls(**parsed.options)
    return cls(parsed.model or kind.default_model(), **parsed.options)


_shared: dict[str, LLMBackend] = {}
_shared_lock = threading.Lock()


def shared_backend(spec: str) -> LLMBackend:
    """One backend per spec in this process, so roles and environments naming the same model share
    its weights (a 13B reviewer is loaded once, not once per sub-environment)."""
    key = parse_spec(spec).text
    with _shared_lock:
        if key not in _shared:
            _shared[key] = make_backend(spec)
        return _shared[key]


def without_adapter(backend: LLMBackend) -> LLMBackend:
    """``backend``, or for a specialist expert its base model without the adapter: the reviewer and
    the responder a specialist gets when none is named (its adapter was trained to rewrite, not to
    judge or answer; the review head reads the base model's hidden states)."""
    return shared_backend(backend.base_spec) if backend.specialist else backend  # type: ignore[attr-defined]
