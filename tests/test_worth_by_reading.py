"""The worth-by-reading export reads the kept rewrites of a pack bench from the pack its runs were on."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from benchmarks.worth_by_reading import kept_steps
from teams_env.replay.pack import load_pack

SMALL_PACK = Path(__file__).parent / "data" / "packs" / "small"


def _bench(tmp_path: Path, pack_hash: str, kept: list[str]) -> Path:
    results = {"config": {"pack": str(SMALL_PACK)}, "pack_hash": pack_hash}
    (tmp_path / "results.json").write_text(json.dumps(results), encoding="utf-8")
    run = {"result": {"agent": "uniform", "heldout": {"kept": kept}}}
    with gzip.open(tmp_path / "runs.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps(run) + "\n")
    return tmp_path


def test_kept_rewrites_are_traced_to_the_step_that_wrote_them(tmp_path):
    pack = load_pack(SMALL_PACK)
    heldout = set(pack.split("heldout"))
    node = next(n for n in pack.nodes.values() if n.seed_id in heldout and n.path and n.reward > 0)
    bench = _bench(tmp_path, pack.manifest["content_sha256"], [node.instruction])
    [row] = kept_steps(bench, ("uniform",))["uniform"]
    writers = sorted(  # a revert can reach the same rewrite by several paths: the first is named
        (pack.node(other.seed_id, other.path[:-1]).state, pack.manifest["action_names"][other.path[-1]])
        for other in pack.nodes.values()
        if other.seed_id in heldout
        and other.path
        and other.reward > 0
        and other.instruction == node.instruction
    )
    assert (row["instruction"], row["action"], row["rewrite"]) == (*writers[0], node.instruction)


def test_runs_on_another_recording_of_the_pack_are_an_error_that_says_so(tmp_path):
    bench = _bench(tmp_path, "0" * 64, [])
    with pytest.raises(SystemExit, match=r"results\.json: its runs are on pack content 000000000000.*--pack"):
        kept_steps(bench, ("uniform",))
