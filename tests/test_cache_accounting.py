"""One cache and one accounting for every LLM call: hits never reach the model, counts are exact,
two processes can share a cache file, and a full disk costs no answers."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3

import pytest

from teams_env.llm.accounting import QueryLedger, RoleUsage
from teams_env.llm.base import GenerationParams
from teams_env.llm.cache import ResponseCache, open_cache
from teams_env.llm.scripted import ScriptedBackend
from teams_env.llm.service import LLMService

CONVERSATIONS = [[{"role": "user", "content": f"question {i}"}] for i in range(5)]


def test_hits_never_reach_the_backend_and_are_counted(tmp_path):
    backend, ledger = ScriptedBackend(), QueryLedger()
    service = LLMService(backend, "responder", ledger, ResponseCache(tmp_path / "c.sqlite"))
    first = service.generate(CONVERSATIONS[:3], GenerationParams())
    second = service.generate(CONVERSATIONS, GenerationParams())
    assert [c.text for c in second[:3]] == [c.text for c in first]
    assert backend.batches["generate"] == [3, 2]
    usage = ledger.usage("responder")
    assert (usage.queries, usage.cache_hits) == (5, 3)
    assert usage.prompt_tokens == sum(c.prompt_tokens for c in second)


def test_parameters_and_backend_are_part_of_the_key(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    a = LLMService(ScriptedBackend(name="a"), "expert", cache=cache)
    b_backend = ScriptedBackend(name="b")
    b = LLMService(b_backend, "expert", cache=cache)
    a.generate(CONVERSATIONS[:1], GenerationParams())
    b.generate(CONVERSATIONS[:1], GenerationParams())
    a.generate(CONVERSATIONS[:1], GenerationParams(temperature=0.7))
    assert b_backend.requests["generate"] == 1
    assert len(cache) == 3


def test_scores_are_cached_too(tmp_path):
    backend = ScriptedBackend()
    service = LLMService(backend, "reviewer", cache=ResponseCache(tmp_path / "c.sqlite"))
    first = service.score_choices(CONVERSATIONS[:2], ["A", "B"])
    again = service.score_choices(CONVERSATIONS[:2], ["A", "B"])
    assert first == again and backend.requests["score"] == 2


def _write_keys(path: str, start: int) -> None:
    cache = ResponseCache(path)
    for i in range(start, start + 200):
        cache.put_many({f"key-{i}": {"writer": start, "i": i}})


def test_two_processes_share_one_file(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    first = ResponseCache(path)
    # Keys both writers will also write, stored first with a value neither of them writes.
    first.put_many({f"key-{i}": {"writer": "first", "i": i} for i in range(150, 200)})
    first.close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_keys, args=(path, start)) for start in (0, 100)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    cache = ResponseCache(path)
    found = cache.get_many(f"key-{i}" for i in range(300))
    assert len(found) == 300 and len(cache) == 300
    assert all(found[f"key-{i}"]["i"] == i for i in range(300))
    # Keys only one writer wrote hold its value; the answer stored first is never overwritten.
    writers = [found[f"key-{i}"]["writer"] for i in range(300)]
    assert writers[:100] == [0] * 100 and writers[200:] == [100] * 100
    assert writers[150:200] == ["first"] * 50
    # Keys both wrote concurrently hold one writer's whole value.
    assert set(writers[100:150]) <= {0, 100}


def test_a_full_disk_keeps_the_answers_and_goes_on_uncached(tmp_path, monkeypatch, caplog):
    cache = ResponseCache(tmp_path / "c.sqlite")

    def disk_full(items):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(cache, "put_many", disk_full)
    service = LLMService(ScriptedBackend(), "expert", cache=cache)
    with caplog.at_level(logging.WARNING):
        answers = service.generate(CONVERSATIONS, GenerationParams())
    assert len(answers) == 5 and all(a.text for a in answers)
    assert service.cache is None
    assert "not writable" in caplog.text


def test_a_corrupt_cache_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match=r"broken\.sqlite: not a usable LLM cache"):
        ResponseCache(path)


def test_open_cache_specs(tmp_path):
    assert open_cache(None) is None and open_cache("none") is None
    path = tmp_path / "x.sqlite"
    assert open_cache(str(path)) is open_cache(path)


def test_ledger_totals_and_table():
    ledger = QueryLedger()
    ledger.record(
        "expert", RoleUsage(queries=3, cache_hits=1, prompt_tokens=30, completion_tokens=12, seconds=1.5)
    )
    ledger.record("reviewer", RoleUsage(queries=2, prompt_tokens=20))
    ledger.record("expert", RoleUsage(queries=1))
    assert ledger.total().queries == 6
    report = ledger.as_dict()
    assert report["expert"]["queries"] == 4 and report["total"]["prompt_tokens"] == 50
    table = ledger.format_table()
    assert "expert" in table and "reviewer" in table and table.splitlines()[-1].startswith("total")
