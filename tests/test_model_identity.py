"""A local model is named in the cache by the content of its weights and the options that change its
answers, never by a file name alone."""

from __future__ import annotations

from pathlib import Path

from teams_env.llm.base import GenerationParams
from teams_env.llm.cache import ResponseCache
from teams_env.llm.identity import EDGE_BYTES, file_fingerprint, gguf_model_id, hf_model_id
from teams_env.llm.scripted import ScriptedBackend
from teams_env.llm.service import LLMService


def _weights(path: Path, head: bytes, size: int = 3 * EDGE_BYTES, tail: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = head + b"\0" * (size - len(head) - len(tail)) + tail
    path.write_bytes(body)
    return path


def test_two_gguf_files_with_one_name_have_different_ids(tmp_path):
    first = _weights(tmp_path / "a" / "model.gguf", b"GGUF first model")
    second = _weights(tmp_path / "b" / "model.gguf", b"GGUF other model")
    copy = _weights(tmp_path / "c" / "model.gguf", b"GGUF first model")
    assert gguf_model_id(first) != gguf_model_id(second)
    assert gguf_model_id(first) == gguf_model_id(copy)  # the same content, wherever it lies
    assert gguf_model_id(first).startswith("model.gguf@")
    assert gguf_model_id(first, n_gpu_layers=99) != gguf_model_id(first)


def test_fingerprint_sees_the_tail_and_the_size(tmp_path):
    base = file_fingerprint(_weights(tmp_path / "x.gguf", b"H"))
    assert file_fingerprint(_weights(tmp_path / "y.gguf", b"H", tail=b"other tail")) != base
    assert file_fingerprint(_weights(tmp_path / "z.gguf", b"H", size=3 * EDGE_BYTES + 1)) != base
    small = _weights(tmp_path / "s.gguf", b"small", size=100)  # shorter than one edge
    assert file_fingerprint(small) != file_fingerprint(_weights(tmp_path / "t.gguf", b"smalL", size=100))


def test_same_named_gguf_files_do_not_share_cache_entries(tmp_path):
    first = _weights(tmp_path / "a" / "model.gguf", b"GGUF first model")
    second = _weights(tmp_path / "b" / "model.gguf", b"GGUF other model")
    cache = ResponseCache(tmp_path / "cache.sqlite")
    question = [[{"role": "user", "content": "Name a fruit."}]]
    params = GenerationParams(max_new_tokens=4)
    one = ScriptedBackend(lambda _: "apple", name=gguf_model_id(first))  # stands for the first file
    assert LLMService(one, "expert", cache=cache).generate(question, params)[0].text == "apple"
    other = LLMService(ScriptedBackend(lambda _: "pear", name=gguf_model_id(second)), "expert", cache=cache)
    assert other.generate(question, params)[0].text == "pear"  # not the first file's cached answer
    assert other.ledger.snapshot()["expert"].cache_hits == 0


def test_hf_ids_resolve_paths_and_carry_the_options(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    _weights(folder / "model.safetensors", b"weights one", size=1000)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    options = {"dtype": "float32", "load_in_4bit": False, "device": "cpu"}
    monkeypatch.chdir(tmp_path)
    relative = hf_model_id("model", **options)
    assert relative == hf_model_id(folder, **options)  # a relative path names the absolute folder
    assert str(folder.resolve()) in relative
    assert hf_model_id(folder, **{**options, "dtype": "bfloat16"}) != relative
    assert hf_model_id(folder, **{**options, "load_in_4bit": True}) != relative
    assert hf_model_id(folder, **{**options, "device": "cuda"}) != relative
    _weights(folder / "model.safetensors", b"weights two", size=1000)  # fine-tuned again in place
    assert hf_model_id(folder, **options) != relative
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)  # the same relative name now means another (missing) folder: a Hub name
    assert hf_model_id("model", **options) != relative
    assert hf_model_id("org/name", **options).startswith("org/name?dtype=float32")
