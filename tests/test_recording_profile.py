"""benchmarks/recording_profile without a model: its clock charges nested stages exclusively and
names llama.cpp stages by role, arms parse with one-line errors, and the report compares arms."""

from __future__ import annotations

import argparse

import pytest

from benchmarks import recording_profile
from benchmarks.recording_profile import DECODE, EXPERT, PREFILL, REVIEWER, Clock, parse_arm, report


class FakeTime:
    """``perf_counter`` that advances only when the model works: one second a call."""

    now = 0.0

    def perf_counter(self) -> float:
        return self.now


class Model:
    def __init__(self, time: FakeTime) -> None:
        self.time = time

    def prefill(self, tokens: list[int]) -> None:
        self.decode(tokens)  # prefill's own llama_decode calls

    def decode(self, tokens: list[int]) -> None:
        self.time.now += 1.0


def test_the_clock_charges_each_stage_its_own_time_and_names_llama_stages_by_role(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(recording_profile.time, "perf_counter", fake.perf_counter)
    clock = Clock()
    with (
        clock.wrap(Model, "prefill", PREFILL),
        clock.wrap(Model, "decode", DECODE, count=lambda self, tokens: len(tokens)),
    ):
        model = Model(fake)
        with clock.stage(EXPERT):
            model.prefill([1, 2, 3])
            model.decode([4])
        with clock.stage(REVIEWER):
            model.prefill([5, 6])
        model.decode([7])
    assert clock.tokens == {
        f"{EXPERT}: {PREFILL}": 3,
        f"{EXPERT}: {DECODE}": 1,
        f"{REVIEWER}: {PREFILL}": 2,
        f"other: {DECODE}": 1,
    }
    assert dict(clock.seconds) == {
        f"{EXPERT}: {PREFILL}": 1.0,
        f"{EXPERT}: {DECODE}": 1.0,
        EXPERT: 0.0,  # its children's time is theirs
        f"{REVIEWER}: {PREFILL}": 1.0,
        REVIEWER: 0.0,
        f"other: {DECODE}": 1.0,
    }


def test_arms_are_batch_size_and_order():
    assert parse_arm("384:longest") == (384, "longest")
    for bad in ("384", "x:arrival", "96:random"):
        with pytest.raises(argparse.ArgumentTypeError, match="BATCH_SIZE:arrival"):
            parse_arm(bad)


def test_the_report_compares_the_time_to_record_the_same_nodes():
    def arm(batch: int, order: str, seconds: float, requests: int) -> dict:
        stages = {f"{EXPERT}: {DECODE}": seconds / 2, "recorder bookkeeping": seconds / 2}
        return {
            "seeds": 2, "depth": 3, "max_batch": 16, "batch_size": batch, "admission": order,
            "wall_seconds": seconds, "rewrites": requests, "stage_seconds": stages,
            "stage_tokens": {f"{EXPERT}: {DECODE}": 1000},
        }  # fmt: skip

    same = {"nodes": 518, "rewrite": 0, "reward": 0, "other info": 0}
    text = report(
        [arm(96, "arrival", 80.0, 252), arm(384, "longest", 64.0, 186)], [same, same], {"decode": 150.0}
    )
    assert "| 384 | longest first | 64.0 | 8.09 | 1.25x | 186 | 0 / 0 / 0 of 518 |" in text
    assert "| expert rewrites: llama.cpp answer decoding | 40.0 | 50% | 25 |" in text
