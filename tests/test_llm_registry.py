"""Backends are named by one string; bad strings are one-line errors."""

from __future__ import annotations

import pytest

from teams_env.llm.registry import make_backend, parse_spec
from teams_env.llm.scripted import ScriptedBackend


@pytest.mark.parametrize(
    ("spec", "kind", "model", "options"),
    [
        ("llamacpp", "llamacpp", "", {}),
        ("", "llamacpp", "", {}),
        (
            "hf:WizardLM/WizardLM-13B-V1.2?load_in_4bit=true",
            "hf",
            "WizardLM/WizardLM-13B-V1.2",
            {"load_in_4bit": True},
        ),
        (
            "openai:llama3:8b?base_url=http://127.0.0.1:11434/v1&concurrency=4&timeout=2.5",
            "openai",
            "llama3:8b",
            {"base_url": "http://127.0.0.1:11434/v1", "concurrency": 4, "timeout": 2.5},
        ),
        ("Scripted", "scripted", "", {}),
    ],
)
def test_parse_spec(spec, kind, model, options):
    parsed = parse_spec(spec)
    assert (parsed.kind, parsed.model, parsed.options) == (kind, model, options)


def test_make_scripted_backend():
    assert isinstance(make_backend("scripted?supports_scoring=false"), ScriptedBackend)


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        (
            "vllm:foo",
            ValueError,
            "unknown LLM backend 'vllm' in 'vllm:foo'; choose one of: hf, llamacpp, openai, scripted",
        ),
        ("scripted?temperature=1", ValueError, "unknown option 'temperature' for LLM backend 'scripted'"),
        ("llamacpp:/nowhere/model.gguf", FileNotFoundError, "model file not found: /nowhere/model.gguf"),
        ("openai", ValueError, "needs a model name"),
    ],
)
def test_bad_specs_are_clear_errors(spec, error, message):
    with pytest.raises(error, match=message):
        make_backend(spec)
